import Foundation
import TestSupport
import Testing

@testable import Deploy

/// What the webhook handler reads from each forge's body: the pushed refs and the repository URLs, and nothing that
/// the rest of a payload holds can change that (or crash it).
@Suite struct ForgePayloadTests {
    func payload(_ object: [String: Any]) throws -> ForgePayload? {
        ForgePayload.decode(Array(try JSONSerialization.data(withJSONObject: object)))
    }

    func push(_ forge: Forge, _ object: [String: Any]) throws -> ForgePush {
        try ForgePayload.push(forge, try payload(object))
    }

    let sha = String(repeating: "a", count: 40)

    @Test(arguments: ["github", "gitlab", "gitea", "bitbucket"])
    func theDocumentedExamplesReadAsOnePushToMain(forge: String) throws {
        let example = ForgeExamples.payload(
            forge, ref: "refs/heads/main", before: String(repeating: "0", count: 40), after: sha,
            cloneURL: "file:///srv/hello.git")
        let push = try push(Forge(rawValue: forge)!, example)
        #expect(push.changes == [ForgePush.Change(ref: "refs/heads/main", after: sha)])
        #expect(push.repositoryURLs.first == "file:///srv/hello.git" || forge == "bitbucket")
        #expect(push.repositoryURLs.contains("file:///srv/hello.git"))
    }

    @Test func eachForgesURLsAreReadInItsOrder() throws {
        let github = try push(
            .github,
            ForgeExamples.github(
                ref: "refs/heads/main", before: sha, after: sha, cloneURL: "https://github.com/octo-org/hello.git"))
        #expect(
            github.repositoryURLs == [
                "https://github.com/octo-org/hello.git", "git@github.com:octo-org/hello.git",
                "git://github.com/octo-org/hello.git",
                "https://github.com/octo-org/hello",
            ])
        let gitlab = try push(
            .gitlab,
            ForgeExamples.gitlab(
                ref: "refs/heads/main", before: sha, after: sha, cloneURL: "http://example.com/mike/hello.git"))
        #expect(
            gitlab.repositoryURLs == [
                "http://example.com/mike/hello.git", "git@example.com:mike/hello.git", "http://example.com/mike/hello",
                "http://example.com/mike/hello.git", "git@example.com:mike/hello.git", "http://example.com/mike/hello",
                "git@example.com:mike/hello.git",
            ])
        let bitbucket = try push(
            .bitbucket,
            ForgeExamples.bitbucket(
                ref: "refs/heads/main", before: sha, after: sha, cloneURL: "https://bitbucket.org/team/hello.git"))
        #expect(
            bitbucket.repositoryURLs == [
                "https://bitbucket.org/team/hello", "https://bitbucket.org/team/hello.git",
                "https://bitbucket.org/team/hello",
                "git@bitbucket.org:team/hello", "ssh://git@bitbucket.org/team/hello",
            ])
    }

    @Test func bitbucketServerChangesAreRead() throws {
        let push = try push(
            .bitbucket,
            [
                "eventKey": "repo:refs_changed",
                "repository": [
                    "slug": "hello",
                    "links": [
                        "clone": [["href": "ssh://git@bitbucket.example.com:7999/team/hello.git", "name": "ssh"]]
                    ],
                ],
                "changes": [
                    [
                        "ref": ["id": "refs/heads/main", "displayId": "main", "type": "BRANCH"], "fromHash": sha,
                        "toHash": "b" + sha.dropFirst(), "type": "UPDATE",
                    ],
                    ["ref": ["id": "refs/tags/v1"], "toHash": sha, "type": "ADD"],
                ],
            ])
        #expect(
            push.changes == [
                ForgePush.Change(ref: "refs/heads/main", after: "b" + sha.dropFirst()),
                ForgePush.Change(ref: "refs/tags/v1", after: sha),
            ])
        #expect(push.repositoryURLs == ["ssh://git@bitbucket.example.com:7999/team/hello.git"])
    }

    @Test func aDeletedBitbucketBranchOrATagMovesNothing() throws {
        let push = try push(
            .bitbucket,
            [
                "repository": ["full_name": "team/hello"],
                "push": [
                    "changes": [
                        ["new": NSNull(), "old": ["type": "branch", "name": "gone", "target": ["hash": sha]]],
                        ["new": ["type": "tag", "name": "v1", "target": ["hash": sha]]],
                    ]
                ],
            ])
        #expect(push.changes.isEmpty)
        #expect(
            push.repositoryURLs == [
                "https://bitbucket.org/team/hello", "git@bitbucket.org:team/hello",
                "ssh://git@bitbucket.org/team/hello",
            ])
    }

    @Test func fieldsOfAnotherTypeReadAsAbsentWithoutSpoilingTheRest() throws {
        let push = try push(
            .github,
            [
                "ref": "refs/heads/main", "after": sha,
                "repository": [
                    "clone_url": 42, "ssh_url": NSNull(), "git_url": ["nested": true],
                    "html_url": "https://github.com/o/r", "url": "",
                ],
                "commits": "not a list",
            ])
        #expect(push.repositoryURLs == ["https://github.com/o/r"])
        #expect(push.changes == [ForgePush.Change(ref: "refs/heads/main", after: sha)])
    }

    @Test func whatIsNotAPushSaysWhatIsMissing() throws {
        #expect(ForgePayload.decode(Array("[1, 2]".utf8)) == nil)
        #expect(ForgePayload.decode(Array("{\"ref\": ".utf8)) == nil)
        #expect(ForgePayload.decode(Array(String(repeating: "{\"a\":", count: 5_000).utf8)) == nil)
        #expect(throws: ForgePayload.Malformed.self) { try ForgePayload.push(.github, nil) }
        #expect(throws: ForgePayload.Malformed.self) {
            try self.push(.github, ["ref": 5, "after": self.sha, "repository": ["clone_url": "x"]])
        }
        #expect(throws: ForgePayload.Malformed.self) {
            try self.push(.github, ["ref": "refs/heads/main", "after": self.sha])
        }
        #expect(throws: ForgePayload.Malformed.self) { try self.push(.bitbucket, ["repository": ["full_name": "t/h"]]) }
        // A ping names its repository too, so that the right secret can be chosen.
        let ping = try payload([
            "zen": "Keep it simple.", "hook_id": 1, "repository": ["clone_url": "https://github.com/o/r.git"],
        ])
        #expect(ping?.repositoryURLs(.github) == ["https://github.com/o/r.git"])
    }
}
