/// One problem in a pipeline file, with the place it was found.
public struct PipelineError: Error, Sendable, Equatable, CustomStringConvertible {
    public let file: String
    /// 1-based.
    public let line: Int
    /// 1-based, counted in characters.
    public let column: Int
    public let message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        // One error, one line: whatever a message quotes from the file, it never spans lines.
        self.message = message.replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// `file:line:column: message`, the form editors and CI logs link to.
    public var description: String { "\(file):\(line):\(column): \(message)" }
}

/// Every problem found in one pipeline file. Loading reports all of them at once, not just the first.
public struct PipelineErrors: Error, Sendable, Equatable, CustomStringConvertible {
    public let errors: [PipelineError]

    public init(_ errors: [PipelineError]) {
        self.errors = errors
    }

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
