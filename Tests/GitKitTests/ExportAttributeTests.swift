import Foundation
import GitKit
import TestSupport
import Testing

/// An export applies the commit's attributes exactly as `git archive` does, compared byte for byte.
@Suite struct ExportAttributeTests {
    /// A repository whose tree uses export-subst, eol, text, -text, crlf, ident and binary files.
    static func makeRepository(_ scratch: ScratchDirectory) throws -> (work: WorkingRepository, sha: String) {
        let work = try WorkingRepository(at: scratch("work"))
        let attributes = """
            *.subst export-subst
            *.crlf text eol=crlf
            *.lf text eol=lf
            *.txt text
            *.auto text=auto eol=crlf
            *.raw -text
            *.bin binary
            *.ident ident
            legacy.dos crlf
            docs/internal export-ignore
            both.subst ident eol=crlf

            """
        let format = [
            "H=%H", "h=%h", "T=%T", "t=%t", "P=%P", "p=%p", "an=%an", "ae=%ae", "aN=%aN", "aE=%aE", "al=%al",
            "ad=%ad", "aD=%aD", "ai=%ai", "aI=%aI", "as=%as", "at=%at", "cn=%cn", "ce=%ce", "cd=%cd", "ci=%ci",
            "cI=%cI", "ct=%ct", "cs=%cs", "s=%s", "f=%f", "b=[%b]", "B=[%B]", "e=%e", "pct=%%", "x=%x41", "n=%n.",
            "unknown=%Z", "color=%Cred%Creset",
        ].map { "$Format:\($0)$" }.joined(separator: "\n")
        try work.commit("base", files: ["old.txt": "old\n"])
        let files: [String: String] = [
            ".gitattributes": attributes,
            "version.subst":
                "commit $Format:%H$ by $Format:%an <%ae>$ on $Format:%cd$\n\(format)\nplain $Format: no end\n",
            "windows.crlf": "one\ntwo\r\nthree\n",
            "unix.lf": "one\r\ntwo\nthree\r\n",
            "notes.txt": "text\nwith\nlines\n",
            "mixed.auto": "auto\nconverted\n",
            "keep.raw": "raw\nstays\n",
            "image.bin": "\u{0}binary\n\u{1}\u{2}\n",
            "id.ident": "$Id$\nand $Id: old junk $\n",
            "legacy.dos": "dos\nlines\n",
            "both.subst": "$Id$ $Format:%h$\nline\n",
            "docs/internal/secret.md": "hidden\n",
            "docs/public.md": "shown $Format:%H$\n",
            "nested/dir/deep.crlf": "a\nb\n",
        ]
        let sha = try work.commit(
            "Add attributes, with a subject\nthat wraps\n\nAnd a body\nof two lines.\n", files: files)
        return (work, sha)
    }

    @Test func matchesGitArchiveByteForByte() throws {
        let scratch = ScratchDirectory()
        let (work, sha) = try Self.makeRepository(scratch)
        let bare = scratch("bare.git")
        try GitCLI.run(["clone", "-q", "--bare", work.path, bare])
        for (label, repository) in [("work", work.path), ("bare", bare)] {
            let out = scratch("out-\(label)")
            try Repository(at: repository).export(OID(hex: sha)!, to: out)
            let ours = try TreeSnapshot(out)
            let theirs = try TreeSnapshot(gitArchiveOf: sha, in: repository, scratch: scratch)
            #expect(ours == theirs, "\(label): \(ours.difference(from: theirs))")
            for name in ours.difference(from: theirs).prefix(3) {
                let mine = ours.entries[name].map { String(decoding: $0.contents, as: UTF8.self) } ?? "(missing)"
                let git = theirs.entries[name].map { String(decoding: $0.contents, as: UTF8.self) } ?? "(missing)"
                Issue.record("\(label) \(name):\nGitKit: \(mine.debugDescription)\ngit:    \(git.debugDescription)")
            }
        }
        // What the attributes did, spelled out.
        let out = scratch("out-work")
        let windows = try Data(contentsOf: URL(fileURLWithPath: out + "/windows.crlf"))
        #expect(windows == Data("one\r\ntwo\r\nthree\r\n".utf8))
        let version = try String(contentsOfFile: out + "/version.subst", encoding: .utf8)
        #expect(version.hasPrefix("commit \(sha) by Ada Lovelace <ada@example.com>"))
        #expect(!FileManager.default.fileExists(atPath: out + "/docs/internal"))
    }

    @Test func followsCoreAutocrlfAsGitArchiveDoes() throws {
        let scratch = ScratchDirectory()
        let work = try WorkingRepository(at: scratch("work"))
        let sha = try work.commit("lines", files: ["a.txt": "one\ntwo\n", "b.sh": "#!/bin/sh\necho\n"])
        let bare = scratch("bare.git")
        try GitCLI.run(["clone", "-q", "--bare", work.path, bare])
        try GitCLI.run(["config", "core.autocrlf", "true"], in: bare)
        let out = scratch("out")
        try Repository(at: bare).export(OID(hex: sha)!, to: out)
        let ours = try TreeSnapshot(out)
        let theirs = try TreeSnapshot(gitArchiveOf: sha, in: bare, scratch: scratch)
        #expect(ours == theirs, "\(ours.difference(from: theirs))")
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/a.txt")) == Data("one\r\ntwo\r\n".utf8))
    }

    @Test func seesAttributesSetThroughAMacro() throws {
        let scratch = ScratchDirectory()
        let work = try WorkingRepository(at: scratch("work"))
        // Only a macro names the conversion; the per-path check must not be skipped for it.
        let sha = try work.commit(
            "macro",
            files: [
                ".gitattributes": "[attr]windows text eol=crlf\n*.bat windows\n*.md linguist-documentation\n",
                "run.bat": "echo one\necho two\n", "README.md": "read\nme\n",
            ])
        let out = scratch("out")
        try Repository(at: work.path).export(OID(hex: sha)!, to: out)
        #expect(try TreeSnapshot(out) == TreeSnapshot(gitArchiveOf: sha, in: work.path, scratch: scratch))
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/run.bat")) == Data("echo one\r\necho two\r\n".utf8))
    }

    @Test func decodesALatin1CommitMessage() throws {
        let scratch = ScratchDirectory()
        let work = try WorkingRepository(at: scratch("work"))
        try writeFile(work.path + "/a", "a")
        try GitCLI.run(["add", "a"], in: work.path)
        // "Café déjà vu" in ISO-8859-1 bytes, committed with git's own encoding header.
        let latin1 = Data([0x43, 0x61, 0x66, 0xE9, 0x20, 0x64, 0xE9, 0x6A, 0xE0, 0x20, 0x76, 0x75, 0x0A])
        let messageFile = scratch("message")
        try latin1.write(to: URL(fileURLWithPath: messageFile))
        try GitCLI.run(
            ["-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "-F", messageFile], in: work.path,
            environment: ["GIT_AUTHOR_NAME": String(decoding: [0x4A, 0x6F, 0x73, 0xC3, 0xA9], as: UTF8.self)])
        let repository = try Repository(at: work.path)
        let commit = try repository.commit(try repository.resolve("HEAD"))
        #expect(commit.messageEncoding?.uppercased() == "ISO-8859-1")
        #expect(commit.rawMessage == Array(latin1))
        #expect(commit.message == "Café déjà vu\n")
        #expect(commit.summary == "Café déjà vu")
        // The same subject as git log prints it, re-encoded to UTF-8.
        #expect(try GitCLI.run(["log", "-1", "--format=%s"], in: work.path) == commit.summary)
    }
}
