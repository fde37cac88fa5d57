//! Plain request/response types of the Strom engine's HTTP control endpoint, shared by the
//! engine (which serves them) and the operator and control plane (which call it).
//!
//! Types only: no logic, no configuration, no errors. The types arrive with the engine's
//! control endpoint (see `docs/architecture.md` for what is built so far).
