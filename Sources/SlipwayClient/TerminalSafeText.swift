/// Step output made safe to print on a terminal.
///
/// A build prints whatever it likes, and a deployment's log may come from a commit anyone could push. Copied to a
/// terminal as it is, an escape sequence in it can clear the screen, retitle the window, rewrite what was printed
/// before, or write the clipboard (OSC 52). This keeps printable text, tabs and, when `keepColours` is set, the
/// colour sequences (`ESC [ … m`) that build tools print; every other control character and escape sequence is
/// dropped, C1 controls included.
public enum TerminalSafeText {
    public static func filter(_ text: String, keepColours: Bool) -> String {
        var scalars = Array(text.unicodeScalars)[...]
        var kept = String.UnicodeScalarView()
        while let scalar = scalars.popFirst() {
            switch scalar.value {
            case 0x1B:
                let sequence = escapeSequence(after: &scalars)
                if keepColours, sequence.isColour { kept.append(contentsOf: [scalar] + sequence.scalars) }
            case 0x9B:  // CSI as one C1 character
                _ = controlSequence(after: &scalars)
            case 0x9D:  // OSC as one C1 character
                skipString(after: &scalars)
            case 0x09, 0x0A:
                kept.append(scalar)
            case 0x00..<0x20, 0x7F, 0x80..<0xA0:
                continue
            default:
                kept.append(scalar)
            }
        }
        return String(kept)
    }

    private struct Sequence {
        var scalars: [Unicode.Scalar]
        var isColour: Bool
    }

    /// The sequence that follows an ESC, consumed from `scalars`.
    private static func escapeSequence(after scalars: inout ArraySlice<Unicode.Scalar>) -> Sequence {
        guard let introducer = scalars.popFirst() else { return Sequence(scalars: [], isColour: false) }
        switch introducer {
        case "[":
            let body = controlSequence(after: &scalars)
            let isColour =
                body.last == "m" && body.dropLast().allSatisfy { ("0"..."9").contains($0) || $0 == ";" || $0 == ":" }
            return Sequence(scalars: [introducer] + body, isColour: isColour)
        case "]", "P", "X", "^", "_":
            // OSC, DCS, SOS, PM and APC carry a string up to a terminator.
            skipString(after: &scalars)
        default:
            // A two-character sequence such as ESC c (reset) or ESC 7; intermediates first.
            while let next = scalars.first, (0x20...0x2F).contains(next.value) { scalars.removeFirst() }
            if (0x20...0x2F).contains(introducer.value) { _ = scalars.popFirst() }
        }
        return Sequence(scalars: [], isColour: false)
    }

    /// The parameters, intermediates and final character of a control sequence (after `ESC [` or CSI).
    private static func controlSequence(after scalars: inout ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
        var body: [Unicode.Scalar] = []
        while let next = scalars.popFirst() {
            body.append(next)
            if (0x40...0x7E).contains(next.value) { break }
            guard let following = scalars.first, (0x20...0x7E).contains(following.value) else { break }
        }
        return body
    }

    /// Up to and including the string terminator: BEL, ESC \ or ST. An unterminated string ends with its line, so
    /// that it cannot swallow the rest of a log.
    private static func skipString(after scalars: inout ArraySlice<Unicode.Scalar>) {
        while let next = scalars.first, next != "\n" {
            scalars.removeFirst()
            if next.value == 0x07 || next.value == 0x9C { return }
            if next.value == 0x1B {
                if scalars.first == "\\" { scalars.removeFirst() }
                return
            }
        }
    }
}
