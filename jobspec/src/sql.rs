//! The SQL texts inside a job spec, parsed with `sqlparser` (Flink SQL's expression syntax is
//! the generic dialect's). The engine compiles what these return; the spec's checks only need
//! them to parse.

use sqlparser::ast::{self, SelectItem};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

fn parser(text: &str) -> Result<Parser<'static>, String> {
    Parser::new(&GenericDialect)
        .try_with_sql(text)
        .map_err(|e| format!("{text:?} is not valid SQL: {e}"))
}

/// Parses a SQL expression.
pub fn parse_expr(text: &str) -> Result<ast::Expr, String> {
    let mut p = parser(text)?;
    let expr = p
        .parse_expr()
        .map_err(|e| format!("{text:?} is not a valid SQL expression: {e}"))?;
    p.expect_token(&Token::EOF)
        .map_err(|_| format!("{text:?} has text after the expression"))?;
    Ok(expr)
}

/// Parses a select item: `expr [AS alias]`.
pub fn parse_select_item(text: &str) -> Result<(ast::Expr, Option<String>), String> {
    let mut p = parser(text)?;
    let item = p
        .parse_select_item()
        .map_err(|e| format!("{text:?} is not a valid select item: {e}"))?;
    p.expect_token(&Token::EOF)
        .map_err(|_| format!("{text:?} has text after the select item"))?;
    match item {
        SelectItem::UnnamedExpr(e) => Ok((e, None)),
        SelectItem::ExprWithAlias { expr, alias } => Ok((expr, Some(alias.value))),
        _ => Err(format!("{text:?}: write the columns out instead of *")),
    }
}

/// Parses an ORDER BY list, `cnt DESC, k ASC`: each expression and whether it ascends.
pub fn parse_order_by(text: &str) -> Result<Vec<(ast::Expr, bool)>, String> {
    let mut p = parser(text)?;
    let items = p
        .parse_comma_separated(Parser::parse_order_by_expr)
        .map_err(|e| format!("{text:?} is not a valid ORDER BY list: {e}"))?;
    p.expect_token(&Token::EOF)
        .map_err(|_| format!("{text:?} has text after the ORDER BY list"))?;
    Ok(items
        .into_iter()
        .map(|o| {
            (
                o.expr,
                !matches!(o.options.sort, Some(ast::OrderBySort::Desc)),
            )
        })
        .collect())
}
