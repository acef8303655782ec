/// Git's rules for a branch name (`git check-ref-format --branch`), so that a pipeline file can be checked without
/// a repository: every component of `refs/heads/<name>` must be non-empty, must not start with `.` or end with
/// `.lock`, and the name must not hold `..`, `@{`, a control character, a space or any of `~^:?*[\`, must not end
/// with `/` or `.`, and must not be `@`. A leading `-` is refused too, as git refuses it on the command line.
public enum BranchName {
    public static func isValid(_ name: String) -> Bool {
        guard !name.isEmpty, name != "@", !name.hasPrefix("-"), !name.hasSuffix("."),
            !name.contains(".."), !name.contains("@{")
        else { return false }
        let forbidden: Set<UInt8> = Set(" ~^:?*[\\".utf8)
        guard name.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F && !forbidden.contains($0) }) else { return false }
        return name.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { component in
            !component.isEmpty && !component.hasPrefix(".") && !component.hasSuffix(".lock")
        }
    }
}
