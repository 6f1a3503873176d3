//! Markdown tables with aligned columns, and number formatting (`12,345`, `+1,234`, `0.52×`).

/// A markdown table: a header row, then rows of cells; columns listed in `right` are
/// right-aligned (numbers).
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles; a title starting with `>` is right-aligned (the `>` is
    /// dropped).
    pub fn new(columns: &[&str]) -> Table {
        Table {
            header: columns
                .iter()
                .map(|c| c.trim_start_matches('>').to_string())
                .collect(),
            right: columns.iter().map(|c| c.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are empty, extra ones dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// The table as markdown, one line per row, columns padded to their widest cell.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(3)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut out = String::from("|");
            for (i, cell) in cells.iter().enumerate() {
                let w = widths.get(i).copied().unwrap_or(0);
                if self.right.get(i).copied().unwrap_or(false) {
                    out.push_str(&format!(" {cell:>w$} |"));
                } else {
                    out.push_str(&format!(" {cell:<w$} |"));
                }
            }
            out
        };
        let mut out = line(&self.header);
        out.push('\n');
        out.push('|');
        for (i, w) in widths.iter().enumerate() {
            if self.right.get(i).copied().unwrap_or(false) {
                out.push_str(&format!("{}:|", "-".repeat(w + 1)));
            } else {
                out.push_str(&format!("{}|", "-".repeat(w + 2)));
            }
        }
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }
}

/// `12345.6` → `12,346`.
pub fn int(value: f64) -> String {
    let rounded = value.round();
    let negative = rounded < 0.0;
    let digits = format!("{:.0}", rounded.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if negative {
        format!("-{out}")
    } else {
        out
    }
}

/// `1234.4` → `+1,234`, `-5` → `-5`.
pub fn signed(value: f64) -> String {
    if value.round() >= 0.0 {
        format!("+{}", int(value))
    } else {
        int(value)
    }
}

/// `0.5234` → `0.52×`.
pub fn ratio(value: f64) -> String {
    format!("{value:.2}×")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(int(0.0), "0");
        assert_eq!(int(999.4), "999");
        assert_eq!(int(1234.5), "1,235");
        assert_eq!(int(1_234_567.0), "1,234,567");
        assert_eq!(int(-1234.0), "-1,234");
        assert_eq!(signed(18034.2), "+18,034");
        assert_eq!(signed(-12.0), "-12");
        assert_eq!(ratio(0.5234), "0.52×");
    }

    #[test]
    fn renders_aligned_markdown() {
        let mut t = Table::new(&["path", ">Ir"]);
        t.row(vec!["a".into(), "1".into()]);
        t.row(vec!["bbbb".into(), "12,345".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.first().copied(), Some("| path |     Ir |"));
        assert_eq!(lines.get(1).copied(), Some("|------|-------:|"));
        assert_eq!(lines.get(3).copied(), Some("| bbbb | 12,345 |"));
    }
}
