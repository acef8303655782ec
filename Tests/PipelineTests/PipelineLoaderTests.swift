import Foundation
import Pipeline
import TestSupport
import Testing

@Suite struct PipelineLoaderTests {
    static let fixtures = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    let loader = PipelineLoader(environment: ["HELLO_SECRET": "s3cr3t-value", "PW": "hunter2", "HOME": "/home/deploy"])

    @Test func loadsTheContractExample() throws {
        let pipeline = try loader.load(file: Self.fixtures.appendingPathComponent("valid/full.yml").path)
        #expect(pipeline.app == "full")
        #expect(pipeline.repository == "/srv/git/hello.git")
        #expect(pipeline.branch == "main")
        #expect(pipeline.deployTo == "/srv/hello")
        #expect(pipeline.keepReleases == 5)
        #expect(pipeline.poll == .seconds(60))
        #expect(pipeline.paths.map(\.pattern) == ["services/hello/**"])
        #expect(pipeline.webhookSecret == "s3cr3t-value")
        #expect(pipeline.environment == [EnvironmentVariable("APP_ENV", "production")])
        #expect(pipeline.build == [Step(name: "make build", run: "make build")])
        #expect(pipeline.test == [Step(name: "unit", run: "make test", timeout: .seconds(300))])
        #expect(pipeline.migrate.map(\.run) == ["./bin/migrate"])
        #expect(pipeline.activate.map(\.run) == ["./bin/restart"])
        #expect(
            pipeline.health
                == HealthCheck(probe: .http("http://127.0.0.1:9000/up"), timeout: .seconds(30), interval: .seconds(1)))
        #expect(pipeline.rollback.map(\.run) == ["./bin/migrate --to-current"])
        #expect(
            pipeline.cache == [
                CacheEntry(path: ".venv", key: ["requirements.txt"]),
                CacheEntry(path: "node_modules", key: ["package-lock.json"]),
            ])
        #expect(pipeline.secrets == ["s3cr3t-value"])
    }

    @Test func cachePathsAreWrittenBackPlainly() throws {
        let yaml = """
            repository: /srv/git/a.git
            cache:
              - ./build//cache/
              - path: vendor/bundle
                key: [Gemfile.lock, ./Gemfile.lock, config/ruby-version]
            """
        let pipeline = try loader.load(yaml: yaml, app: "a", file: "a.yml")
        #expect(
            pipeline.cache == [
                CacheEntry(path: "build/cache"),
                CacheEntry(path: "vendor/bundle", key: ["Gemfile.lock", "config/ruby-version"]),
            ])
        #expect(try loader.load(yaml: "repository: /x\n", app: "a", file: "a.yml").cache.isEmpty)
    }

    @Test func appliesDefaults() throws {
        let pipeline = try loader.load(yaml: "repository: /srv/git/a.git\n", app: "a", file: "a.yml")
        #expect(pipeline.branch == "main")
        #expect(pipeline.deployTo == nil)
        #expect(pipeline.keepReleases == 5)
        #expect(pipeline.poll == nil)
        #expect(pipeline.paths.isEmpty)
        #expect(pipeline.health == nil)
        #expect(pipeline.build.isEmpty && pipeline.activate.isEmpty)
        #expect(Step(run: "x").timeout == .seconds(1800))
    }

    @Test func interpolatesFromTheDaemonEnvironmentAndRecordsSecrets() throws {
        let yaml = """
            repository: /srv/git/a.git
            env:
              DATABASE_URL: postgres://app:${PW}@db/app
              LITERAL: "$${NOT_EXPANDED} and $HOME stays"
              PORT: 9000
            test:
              - run: ./t
                env:
                  TOKEN: ${HELLO_SECRET}
            """
        let pipeline = try loader.load(yaml: yaml, app: "a", file: "a.yml")
        #expect(
            pipeline.environment == [
                EnvironmentVariable("DATABASE_URL", "postgres://app:hunter2@db/app"),
                EnvironmentVariable("LITERAL", "${NOT_EXPANDED} and $HOME stays"),
                EnvironmentVariable("PORT", "9000"),
            ])
        #expect(pipeline.test[0].environment == [EnvironmentVariable("TOKEN", "s3cr3t-value")])
        #expect(Set(pipeline.secrets) == ["hunter2", "postgres://app:hunter2@db/app", "s3cr3t-value"])
    }

    @Test func resolvesRelativePathsAgainstTheFile() throws {
        let pipeline = try loader.load(
            yaml: "repository: ../git/app.git\ndeploy_to: ~/apps/a\n", app: "a", file: "/etc/slipway/pipelines/a.yml",
            baseDirectory: "/etc/slipway/pipelines")
        #expect(pipeline.repository == "/etc/slipway/git/app.git")
        #expect(pipeline.deployTo == "/home/deploy/apps/a")
        let remote = try loader.load(
            yaml: "repository: https://github.com/a/b.git\n", app: "a", file: "a.yml", baseDirectory: "/x")
        #expect(remote.repository == "https://github.com/a/b.git")
    }

    /// A pipeline file is read only when it is a regular file inside its folder, and never beyond the size limit:
    /// an error quotes the file, and the error is shown on an open GET.
    @Test func readsOnlyRegularFilesInsideTheFolderUpToTheLimit() throws {
        let scratch = ScratchDirectory("slipway-loader")
        let folder = scratch("pipelines")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try writeFile(scratch("private.txt"), "password: hunter2-private\n")
        try FileManager.default.createSymbolicLink(
            atPath: folder + "/out.yml", withDestinationPath: scratch("private.txt"))
        func problem(_ name: String) throws -> String {
            do {
                _ = try loader.load(file: folder + "/" + name)
            } catch {
                return error.description
            }
            Issue.record("\(name) loaded")
            return ""
        }
        let out = try problem("out.yml")
        #expect(out.contains("out.yml:1:1: the file is a symbolic link out of the pipelines folder"), "\(out)")
        #expect(!out.contains("hunter2"), "the content of a file outside the folder is never quoted")

        try writeFile(folder + "/shared.inc", "repository: /srv/git/a.git\n")
        try FileManager.default.createSymbolicLink(atPath: folder + "/in.yml", withDestinationPath: "shared.inc")
        #expect(try loader.load(file: folder + "/in.yml").repository == "/srv/git/a.git", "a link within the folder")

        // A sparse file of 1 GiB: refused from its size, before anything is read.
        #expect(FileManager.default.createFile(atPath: folder + "/huge.yml", contents: nil))
        #expect(truncate(folder + "/huge.yml", 1 << 30) == 0)
        #expect(try problem("huge.yml").hasSuffix("huge.yml:1:1: the file is larger than 1 MiB"))

        #expect(mkfifo(folder + "/pipe.yml", 0o600) == 0)
        #expect(
            try problem("pipe.yml").hasSuffix("pipe.yml:1:1: the file is not a regular file"), "and it does not hang")
    }

    @Test func reportsEveryProblemInAFileAtOnce() throws {
        let yaml = """
            repository: 42
            keep_releases: -1
            poll: soon
            colour: blue
            """
        let error = #expect(throws: PipelineErrors.self) { try loader.load(yaml: yaml, app: "a", file: "a.yml") }
        #expect(error?.errors.map { "\($0.line):\($0.column)" } == ["1:13", "2:16", "3:7", "4:1"])
        #expect(error?.description.hasPrefix("a.yml:1:13: 'repository' must be a string") == true)
    }

    /// Every broken file in the test data names its expected first error in its first line.
    @Test(
        arguments: try! FileManager.default.contentsOfDirectory(atPath: fixtures.appendingPathComponent("broken").path)
            .sorted())
    func brokenFilesGiveAPositionedError(name: String) throws {
        let path = Self.fixtures.appendingPathComponent("broken/\(name)").path
        let firstLine = String(
            decoding: try Data(contentsOf: URL(fileURLWithPath: path)).prefix { $0 != 10 }, as: UTF8.self)
        let expectation = firstLine.dropFirst("# expect: ".count)
        let position = String(expectation.prefix { $0 != " " })
        let message = String(expectation.dropFirst(position.count + 1))
        let error = #expect(throws: PipelineErrors.self) { try loader.load(file: path) }
        let first = try #require(error?.errors.first)
        #expect("\(first.line):\(first.column)" == position, "\(first)")
        #expect(first.message.contains(message), "\(first)")
        #expect(first.description.hasPrefix("\(path):\(position): "))
    }

    @Test func theExamplePipelinesInTheRepositoryValidate() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let directory = root.appendingPathComponent("pipelines").path
        let files = try PipelineLoader.pipelineFiles(in: directory)
        #expect(!files.isEmpty, "pipelines/ holds examples")
        let lenient = PipelineLoader(
            environment: ProcessInfo.processInfo.environment.merging([
                "DEMO_WEBHOOK_SECRET": "x", "SHOP_WEBHOOK_SECRET": "x", "SHOP_DATABASE_URL": "x",
            ]) { a, _ in a })
        for file in files {
            #expect(throws: Never.self, "\(file)") { try lenient.load(file: file) }
        }
    }

    @Test func aliasesCannotBlowAPipelineUp() throws {
        // A "billion laughs": 2,000 references to a 100 KB string.
        let yaml =
            "repository: /x\nenv:\n  BIG: &big \"" + String(repeating: "t", count: 100_000) + "\"\nbuild:\n"
            + String(repeating: "  - *big\n", count: 2000)
        let error = #expect(throws: PipelineErrors.self) { try loader.load(yaml: yaml, app: "bomb", file: "bomb.yml") }
        #expect(error?.errors.first?.message.contains("too large once its aliases are expanded") == true)
        #expect(error?.errors.count == 1, "one error, then the walk stops")
        // Reasonable sharing still works.
        let shared = try loader.load(
            yaml: "repository: /x\nbuild: &steps\n  - make\ntest: *steps\n", app: "ok", file: "ok.yml")
        #expect(shared.test.map(\.run) == ["make"])
    }

    @Test func everyErrorStaysOnOneLine() throws {
        for yaml in [
            "repository: /x\nbuild: |\n  block\n  text\n", "repository: /x\nbranch: \"a\\nb\"\n",
            "repository: /x\npoll: |\n  5\n  m\n",
        ] {
            let error = #expect(throws: PipelineErrors.self) { try loader.load(yaml: yaml, app: "a", file: "a.yml") }
            for problem in error?.errors ?? [] {
                #expect(!problem.description.contains("\n"), "\(problem.description)")
            }
        }
    }

    @Test func appNamesFollowTheContract() {
        for good in ["a", "hello", "my-app_2", "0day", String(repeating: "a", count: 63)] {
            #expect(isValidAppName(good), "\(good)")
        }
        for bad in ["", "Hello", "-app", "_app", "app.name", "app name", "ünï", String(repeating: "a", count: 64)] {
            #expect(!isValidAppName(bad), "\(bad)")
        }
    }
}

@Suite struct ShownRepositoryTests {
    @Test func aPasswordInTheURLIsHidden() {
        let shown = { Pipeline(app: "a", repository: $0).shownRepository }
        #expect(shown("https://deploy:s3cr3t@git.example.com/a.git") == "https://deploy:***@git.example.com/a.git")
        #expect(shown("https://git.example.com/a.git") == "https://git.example.com/a.git")
        #expect(shown("ssh://git@git.example.com/a.git") == "ssh://git@git.example.com/a.git")
        #expect(shown("/srv/git/a.git") == "/srv/git/a.git")
    }
}

@Suite struct DurationTextTests {
    @Test func elapsedTimesReadAtAGlance() {
        #expect(DurationText.elapsed(milliseconds: 0) == "0ms")
        #expect(DurationText.elapsed(milliseconds: 36) == "36ms")
        #expect(DurationText.elapsed(milliseconds: 999) == "999ms")
        #expect(DurationText.elapsed(milliseconds: 1000) == "1.0s")
        #expect(DurationText.elapsed(milliseconds: 4_290) == "4.2s")
        #expect(DurationText.elapsed(milliseconds: 59_999) == "59.9s")
        #expect(DurationText.elapsed(milliseconds: 60_000) == "1m00s")
        #expect(DurationText.elapsed(milliseconds: 185_000) == "3m05s")
        #expect(DurationText.elapsed(milliseconds: -5) == "0ms")
    }

    @Test func parsesTheContractForms() {
        #expect(DurationText.parse("90s") == .seconds(90))
        #expect(DurationText.parse("5m") == .seconds(300))
        #expect(DurationText.parse("1h") == .seconds(3600))
        #expect(DurationText.parse("1m30s") == .seconds(90))
        #expect(DurationText.parse("1h2m3s") == .seconds(3723))
        #expect(DurationText.parse("250ms") == .milliseconds(250))
        for bad in ["", "5", "m", "5 m", "1m2h", "30s1m", "-5s", "0s", "5d", "1.5s", "99999999999s"] {
            #expect(DurationText.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func formatsDurations() {
        #expect(DurationText.format(.seconds(90)) == "1m30s")
        #expect(DurationText.format(.seconds(3600)) == "1h")
        #expect(DurationText.format(.milliseconds(1500)) == "1s500ms")
    }
}

@Suite struct PathGlobTests {
    @Test func matchesLikeGitignore() throws {
        let services = try #require(PathGlob("services/hello/**"))
        #expect(services.matches("services/hello/main.go"))
        #expect(services.matches("services/hello/a/b/c.txt"))
        #expect(!services.matches("services/other/main.go"))
        #expect(!services.matches("services/hello"))

        let swift = try #require(PathGlob("*.swift"))
        #expect(swift.matches("main.swift"))
        #expect(swift.matches("Sources/App/main.swift"), "a pattern without / matches at any depth")
        #expect(!swift.matches("main.swiftx"))

        let oneLevel = try #require(PathGlob("src/*.c"))
        #expect(oneLevel.matches("src/a.c"))
        #expect(!oneLevel.matches("src/x/a.c"))

        let middle = try #require(PathGlob("docs/**/index.md"))
        #expect(middle.matches("docs/index.md"))
        #expect(middle.matches("docs/a/b/index.md"))

        let classes = try #require(PathGlob("v[0-9].txt"))
        #expect(classes.matches("v1.txt"))
        #expect(!classes.matches("vx.txt"))
        #expect(try #require(PathGlob("file?.txt")).matches("file1.txt"))
        #expect(try #require(PathGlob("[!a]*")).matches("b") && !PathGlob("[!a]*")!.matches("a"))
        #expect(PathGlob("[abc") == nil)
        #expect(PathGlob("") == nil)
    }

    @Test func filtersDeploysByChangedPaths() throws {
        var pipeline = Pipeline(app: "a", repository: "/r")
        #expect(pipeline.wantsDeploy(forChangedPaths: ["anything"]))
        pipeline.paths = [PathGlob("services/hello/**")!, PathGlob("Dockerfile")!]
        #expect(pipeline.wantsDeploy(forChangedPaths: ["README.md", "services/hello/app.py"]))
        #expect(pipeline.wantsDeploy(forChangedPaths: ["Dockerfile"]))
        #expect(!pipeline.wantsDeploy(forChangedPaths: ["README.md", "services/web/app.js"]))
        #expect(!pipeline.wantsDeploy(forChangedPaths: []))
    }
}

@Suite struct SecretMaskerTests {
    @Test func masksLongestFirst() {
        let masker = SecretMasker(["abc", "abcdef", ""])
        #expect(masker.mask("x abcdef y abc z") == "x *** y *** z")
        #expect(masker.mask("nothing here") == "nothing here")
        #expect(SecretMasker([]).mask("abc") == "abc")
    }
}
