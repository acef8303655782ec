/// `${NAME}` references in pipeline values, read from the daemon's environment. `$${` writes a literal `${`.
/// Any other `$` is left alone, so a value can still hold shell syntax for a step to expand.
enum Interpolation {
    struct Result {
        var value: String
        /// The values that were substituted in, which are secrets.
        var substituted: [String]
    }

    enum Problem: Error, Equatable {
        case unset(name: String, offset: Int)
        case malformed(offset: Int)
    }

    static func expand(_ text: String, environment: [String: String]) throws(Problem) -> Result {
        var output = ""
        var substituted: [String] = []
        let characters = Array(text)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if character == "$", index + 2 < characters.count, characters[index + 1] == "$",
                characters[index + 2] == "{"
            {
                output += "${"
                index += 3
                continue
            }
            if character == "$", index + 1 < characters.count, characters[index + 1] == "{" {
                guard let close = characters[(index + 2)...].firstIndex(of: "}") else {
                    throw .malformed(offset: index)
                }
                let name = String(characters[(index + 2)..<close])
                guard isVariableName(name) else { throw .malformed(offset: index) }
                guard let value = environment[name] else { throw .unset(name: name, offset: index) }
                output += value
                substituted.append(value)
                index = close + 1
                continue
            }
            output.append(character)
            index += 1
        }
        return Result(value: output, substituted: substituted)
    }

    static func isVariableName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic)
        else { return false }
        return name.unicodeScalars.allSatisfy {
            $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)))
        }
    }
}
