// The screen as a value: a grid of cells that the view fills and a backend flushes
// (ncurses, or kept in memory for tests).

/// How a cell is drawn. Monochrome terminals map every style to an attribute.
public enum CellStyle: UInt8, Sendable, Hashable {
    case normal, title, dim, grown, alert, banner, key, selected
}

public struct Cell: Sendable, Hashable {
    public var character: Character = " "
    public var style: CellStyle = .normal
}

/// A width × height grid of cells.
public struct Grid: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public private(set) var cells: [Cell]

    public init(width: Int, height: Int) {
        self.width = max(0, width)
        self.height = max(0, height)
        cells = Array(repeating: Cell(), count: self.width * self.height)
    }

    /// Writes `text` at (x, y), clipped to `maxWidth` and to the grid. Control characters
    /// never reach a cell (they are shown escaped by the caller or replaced here by '?').
    public mutating func put(_ text: String, x: Int, y: Int, style: CellStyle = .normal, maxWidth: Int? = nil) {
        guard y >= 0 && y < height && x < width else { return }
        let limit = min(width, x + (maxWidth ?? width))
        var col = x
        for ch in text {
            if col >= limit { break }
            if col >= 0 {
                let safe: Character = ch.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F } ? "?" : ch
                cells[y * width + col] = Cell(character: safe, style: style)
            }
            col += 1
        }
    }

    /// Fills a row with spaces in `style`.
    public mutating func fill(row y: Int, style: CellStyle) {
        guard y >= 0 && y < height else { return }
        for col in 0..<width { cells[y * width + col] = Cell(character: " ", style: style) }
    }

    public subscript(x: Int, y: Int) -> Cell { cells[y * width + x] }

    /// The rows as text (trailing spaces kept), for tests and the README capture.
    public var lines: [String] {
        (0..<height).map { y in String(cells[(y * width)..<((y + 1) * width)].map(\.character)) }
    }
}

extension Grid {
    /// A box in the manner of btop: a rounded-off frame with its title in the top edge,
    /// `┌─ title ──┐` … `└──┘`, drawn in `style` (the title in `titleStyle`). Nothing is drawn
    /// below 2 columns or 2 rows.
    public mutating func box(x: Int, y: Int, w: Int, h: Int, title: String, style: CellStyle, titleStyle: CellStyle) {
        guard w >= 2, h >= 2 else { return }
        put("┌" + String(repeating: "─", count: w - 2) + "┐", x: x, y: y, style: style)
        put("└" + String(repeating: "─", count: w - 2) + "┘", x: x, y: y + h - 1, style: style)
        for row in (y + 1)..<(y + h - 1) {
            put("│", x: x, y: row, style: style)
            put("│", x: x + w - 1, y: row, style: style)
        }
        put(" " + title + " ", x: x + 2, y: y, style: titleStyle, maxWidth: w - 4)
    }
}
