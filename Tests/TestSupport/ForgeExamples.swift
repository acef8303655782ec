import Crypto
import Foundation
import HTTPTypes

public enum ForgeExamples {
    public static func github(ref: String, before: String, after: String, cloneURL: String) -> [String: Any] {
        [
            "ref": ref, "before": before, "after": after, "created": false, "deleted": false, "forced": false,
            "compare": "https://github.com/octo-org/hello/compare/\(before.prefix(12))...\(after.prefix(12))",
            "repository": [
                "id": 186_853_002, "name": "hello", "full_name": "octo-org/hello", "private": false,
                "html_url": "https://github.com/octo-org/hello", "clone_url": cloneURL,
                "ssh_url": "git@github.com:octo-org/hello.git", "git_url": "git://github.com/octo-org/hello.git",
                "default_branch": "main", "owner": ["login": "octo-org", "id": 1],
            ] as [String: Any],
            "pusher": ["name": "octocat", "email": "octocat@github.com"],
            "sender": ["login": "octocat", "id": 583231],
            "head_commit": ["id": after, "message": "Update README", "timestamp": "2026-11-25T10:00:00Z"],
            "commits": [
                ["id": after, "message": "Update README", "added": [], "removed": [], "modified": ["README.md"]]
            ],
        ]
    }

    public static func gitlab(ref: String, before: String, after: String, cloneURL: String) -> [String: Any] {
        [
            "object_kind": "push", "event_name": "push", "before": before, "after": after, "ref": ref,
            "checkout_sha": after, "user_id": 4, "user_name": "John Smith", "user_username": "jsmith",
            "project_id": 15,
            "project": [
                "id": 15, "name": "Hello", "web_url": "http://example.com/mike/hello",
                "git_ssh_url": "git@example.com:mike/hello.git",
                "git_http_url": cloneURL, "namespace": "Mike", "path_with_namespace": "mike/hello",
                "default_branch": "main",
            ] as [String: Any],
            "repository": [
                "name": "Hello", "url": "git@example.com:mike/hello.git", "homepage": "http://example.com/mike/hello",
                "git_http_url": cloneURL, "git_ssh_url": "git@example.com:mike/hello.git",
            ],
            "commits": [
                ["id": after, "message": "Update Catalan translation", "timestamp": "2026-11-25T10:00:00+02:00"]
            ],
            "total_commits_count": 1,
        ]
    }

    public static func gitea(ref: String, before: String, after: String, cloneURL: String) -> [String: Any] {
        [
            "ref": ref, "before": before, "after": after,
            "compare_url": "http://localhost:3000/gitea/webhooks/compare/\(before)...\(after)",
            "commits": [
                [
                    "id": after, "message": "Webhooks Yay!",
                    "url": "http://localhost:3000/gitea/webhooks/commit/\(after)",
                ]
            ],
            "repository": [
                "id": 140, "name": "webhooks", "full_name": "gitea/webhooks",
                "html_url": "http://localhost:3000/gitea/webhooks",
                "ssh_url": "ssh://gitea@localhost:2222/gitea/webhooks.git", "clone_url": cloneURL,
                "default_branch": "main",
                "owner": ["id": 1, "login": "gitea"],
            ] as [String: Any],
            "pusher": ["id": 1, "login": "gitea"], "sender": ["id": 1, "login": "gitea"],
        ]
    }

    /// Bitbucket Cloud's `repo:push`; `cloneURL` is given as the repository's clone link.
    public static func bitbucket(ref: String, before: String, after: String, cloneURL: String) -> [String: Any] {
        let branch = ref.hasPrefix("refs/heads/") ? String(ref.dropFirst("refs/heads/".count)) : ref
        return [
            "actor": ["display_name": "Emma", "type": "user"],
            "repository": [
                "type": "repository", "name": "hello", "full_name": "team/hello",
                "uuid": "{0f0a1c1e-7b4a-4b1a-9f6f-2a4d3e2b1c0d}",
                "links": [
                    "html": ["href": "https://bitbucket.org/team/hello"],
                    "clone": [["name": "https", "href": cloneURL]],
                ],
            ] as [String: Any],
            "push": [
                "changes": [
                    [
                        "old": ["type": "branch", "name": branch, "target": ["type": "commit", "hash": before]],
                        "new": [
                            "type": "branch", "name": branch,
                            "target": ["type": "commit", "hash": after, "message": "Update"],
                        ],
                        "created": false, "closed": false, "forced": false,
                    ] as [String: Any]
                ]
            ],
        ]
    }

    public static func payload(
        _ forge: String, ref: String, before: String, after: String, cloneURL: String
    ) -> [String: Any] {
        switch forge {
        case "github": github(ref: ref, before: before, after: after, cloneURL: cloneURL)
        case "gitlab": gitlab(ref: ref, before: before, after: after, cloneURL: cloneURL)
        case "gitea": gitea(ref: ref, before: before, after: after, cloneURL: cloneURL)
        default: bitbucket(ref: ref, before: before, after: after, cloneURL: cloneURL)
        }
    }

    /// The headers a forge sends: its event header, a delivery id, and its signature of `body` with `secret`.
    public static func headers(
        _ forge: String, event: String? = nil, body: [UInt8], secret: String?, delivery: String
    ) -> HTTPFields {
        var headers: HTTPFields = [.contentType: "application/json"]
        func set(_ name: String, _ value: String) { headers[HTTPField.Name(name)!] = value }
        let signature = secret.map { secret in
            HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(secret.utf8)))
                .map { String(format: "%02x", $0) }.joined()
        }
        switch forge {
        case "github":
            set("X-GitHub-Event", event ?? "push")
            set("X-GitHub-Delivery", delivery)
            if let signature { set("X-Hub-Signature-256", "sha256=\(signature)") }
        case "gitlab":
            set("X-Gitlab-Event", event ?? "Push Hook")
            set("X-Gitlab-Event-UUID", delivery)
            if let secret { set("X-Gitlab-Token", secret) }
        case "gitea":
            set("X-Gitea-Event", event ?? "push")
            set("X-Gitea-Delivery", delivery)
            if let signature { set("X-Gitea-Signature", signature) }
        default:
            set("X-Event-Key", event ?? "repo:push")
            set("X-Request-Id", delivery)
            if let signature { set("X-Hub-Signature", "sha256=\(signature)") }
        }
        return headers
    }
}
