import SlipwayClient
import Testing

/// Step output printed on a terminal cannot act on it.
@Suite struct TerminalSafeTextTests {
    @Test(arguments: [
        ("plain text\twith a tab", "plain text\twith a tab"),
        ("\u{1B}]52;c;ZXZpbA==\u{07}copied", "copied"),  // OSC 52 writes the clipboard
        ("\u{1B}]0;new title\u{1B}\\titled", "titled"),  // OSC with ESC \ as its terminator
        ("\u{1B}[2J\u{1B}[Hcleared", "cleared"),  // clear the screen, cursor home
        ("\u{1B}[1A\u{1B}[2Krewritten", "rewritten"),  // move up and erase what was printed
        ("\u{9B}2Jc1", "c1"),  // CSI as one C1 character
        ("\u{1B}cafter a reset", "after a reset"),
        ("bell\u{07} and \u{08}backspace\r", "bell and backspace"),
        ("\u{1B}]8;;http://x\u{1B}\\link\u{1B}]8;;\u{1B}\\", "link"),
        ("unterminated \u{1B}]0;title\nnext line", "unterminated \nnext line"),
        ("\u{1B}[31mred\u{1B}[0m", "red"),
    ])
    func escapesAreDropped(printed: String, shown: String) {
        #expect(TerminalSafeText.filter(printed, keepColours: false) == shown)
    }

    @Test func coloursStayWhenColourIsOn() {
        let coloured = "\u{1B}[1;31merror\u{1B}[0m: \u{1B}[38;5;208mwarning\u{1B}[m"
        #expect(TerminalSafeText.filter(coloured, keepColours: true) == coloured)
        #expect(TerminalSafeText.filter("\u{1B}[2J\u{1B}[32mok", keepColours: true) == "\u{1B}[32mok")
    }
}
