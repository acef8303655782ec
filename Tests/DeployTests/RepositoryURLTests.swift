import SlipwayAPI
import Testing

@testable import Deploy

@Suite struct RepositoryURLTests {
    @Test(arguments: [
        ("https://github.com/owner/repo", "https://github.com/owner/repo"),
        ("  https://GitHub.com/Owner/Repo.git/ ", "https://github.com/Owner/Repo"),
        ("HTTPS://User@GitHub.COM/Owner/Repo", "https://User@github.com/Owner/Repo"),
        ("ssh://git@Host.Example:2222/x/y.git", "ssh://git@host.example:2222/x/y"),
        ("git@GitHub.com:Owner/Repo.git", "git@github.com:Owner/Repo"),
        ("GitHub.com:Owner/Repo", "github.com:Owner/Repo"),
        ("file:///srv/git/app.git", "/srv/git/app"),
        ("file:///srv/git/my%20app.git/", "/srv/git/my app"),
        ("/srv/git/app.git//", "/srv/git/app"),
        ("\u{00A0}https://a.example/x\t", "https://a.example/x"),
        ("   ", ""),
        ("", ""),
    ])
    func normalizesAsWebhooksCompare(url: String, normalized: String) {
        #expect(RepositoryURL.normalize(url) == normalized)
    }

    @Test func theSameRepositoryWrittenTwoWaysMatches() {
        #expect(RepositoryURL.normalize("file:///srv/git/app.git") == RepositoryURL.normalize("/srv/git/app"))
        #expect(
            RepositoryURL.normalize("https://GITHUB.com/o/r.git") == RepositoryURL.normalize("https://github.com/o/r/"))
        #expect(RepositoryURL.normalize("https://github.com/o/R") != RepositoryURL.normalize("https://github.com/o/r"))
    }
}
