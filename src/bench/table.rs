//! Markdown tables padded so they line up as plain text too, and the cell formats of
//! the report: `–` stands for a figure that was not measured.

use std::fmt;

/// `value` with `decimals` decimals, or "–".
pub(super) fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.decimals$}"))
}

/// A fraction as a percentage with one decimal ("7.3 %"), or "–".
pub(super) fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{:.1} %", v * 100.0))
}

/// A markdown table with padded columns (readable as plain text too), each line ending in
/// a newline. The first column and, with `text_last`, the last are left-aligned; the
/// others hold numbers. Every row has one cell per header.
pub(super) struct Table<'a> {
    header: &'a [&'a str],
    rows: Vec<Vec<String>>,
    text_last: bool,
    /// Characters per column: its longest cell, header included, and at least 3.
    widths: Vec<usize>,
}

impl<'a> Table<'a> {
    pub(super) fn new(
        header: &'a [&'a str],
        rows: impl IntoIterator<Item = Vec<String>>,
        text_last: bool,
    ) -> Self {
        let rows: Vec<Vec<String>> = rows.into_iter().collect();
        let widths = (0..header.len())
            .map(|c| {
                rows.iter()
                    .map(|r| r[c].chars().count())
                    .chain([header[c].chars().count(), 3])
                    .max()
                    .unwrap_or(3)
            })
            .collect();
        Table {
            header,
            rows,
            text_last,
            widths,
        }
    }

    fn left(&self, column: usize) -> bool {
        column == 0 || (self.text_last && column == self.header.len() - 1)
    }

    fn line<'c>(
        &self,
        f: &mut fmt::Formatter<'_>,
        cells: impl Iterator<Item = &'c str>,
    ) -> fmt::Result {
        f.write_str("|")?;
        for (c, cell) in cells.enumerate() {
            let w = self.widths[c];
            if self.left(c) {
                write!(f, " {cell:<w$} |")?;
            } else {
                write!(f, " {cell:>w$} |")?;
            }
        }
        writeln!(f)
    }
}

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.line(f, self.header.iter().copied())?;
        let rule: Vec<String> = (0..self.header.len())
            .map(|c| {
                let dashes = "-".repeat(self.widths[c] - 1);
                if self.left(c) {
                    format!(":{dashes}")
                } else {
                    format!("{dashes}:")
                }
            })
            .collect();
        self.line(f, rule.iter().map(String::as_str))?;
        for row in &self.rows {
            self.line(f, row.iter().map(String::as_str))?;
        }
        Ok(())
    }
}
