import Foundation
import TestSupport
import Testing

@testable import Pipeline

/// What a newcomer meets first in pipeline files: the template `slipway init` writes, and the hints for the usual
/// first mistakes.
@Suite struct FirstHourPipelineTests {
    let scratch = ScratchDirectory("slipway-first-hour")

    @Test func theTemplateValidatesAsWrittenAndNamesEveryKey() throws {
        let text = PipelineTemplate.text(app: "hello-world", repository: "/srv/git/hello.git")
        let pipeline = try PipelineLoader(environment: [:]).load(
            yaml: text, app: "hello-world", file: "hello-world.yml")
        #expect(pipeline.branch == "main" && pipeline.keepReleases == 5 && pipeline.build.isEmpty)
        for key in PipelineDecoder.topLevelKeys {
            #expect(text.contains("\n\(key):") || text.contains("\n# \(key):"), "the template shows '\(key)'")
        }
        for key in PipelineDecoder.stepKeys + PipelineDecoder.healthKeys {
            #expect(text.contains(" \(key):"), "the template shows '\(key)'")
        }
    }

    @Test func everyExampleInTheTemplateIsValidOnceUncommented() throws {
        let text = PipelineTemplate.text(app: "hello-world", repository: "/srv/git/hello.git")
        // An example line is a comment that holds YAML (a key, or an indented line); prose starts otherwise.
        let uncommented = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            guard line.hasPrefix("# ") else { return String(line) }
            let rest = line.dropFirst(2)
            return rest.hasPrefix("  ") || rest.firstMatch(of: #/^[a-z_]+:/#) != nil ? String(rest) : String(line)
        }.joined(separator: "\n")
        let environment = ["HELLO_WORLD_WEBHOOK_SECRET": "s3cret", "HELLO_WORLD_DATABASE_URL": "postgres://db"]
        let pipeline = try PipelineLoader(environment: environment).load(
            yaml: uncommented, app: "hello-world", file: "hello-world.yml")
        #expect(pipeline.deployTo == "/srv/hello-world" && pipeline.poll == .seconds(60))
        #expect(pipeline.test.first?.timeout == .seconds(600) && pipeline.rollback.count == 1)
        #expect(pipeline.health != nil && pipeline.webhookSecret == "s3cret")
    }

    @Test func aRelativeRepositoryIsMadeAbsoluteAndOddValuesAreQuoted() {
        #expect(PipelineTemplate.repositoryValue("../repos/app.git", from: "/home/ada") == "/home/repos/app.git")
        #expect(
            PipelineTemplate.repositoryValue("https://example.com/a.git", from: "/x") == "https://example.com/a.git")
        #expect(PipelineTemplate.yamlScalar("/srv/git/a.git") == "/srv/git/a.git")
        #expect(PipelineTemplate.yamlScalar("true") == "'true'")
        #expect(PipelineTemplate.yamlScalar("/a b #c") == "'/a b #c'")
    }

    @Test func aFolderOfYamlFilesIsAMistakeNotAPass() throws {
        try writeFile(scratch("pipelines/hello.yaml"), "repository: /srv/git/hello.git\n")
        let failure = #expect(throws: PipelineValidationFailure.self) {
            try PipelineValidation(paths: [scratch("pipelines")], loader: PipelineLoader(environment: [:]))
        }
        #expect(
            failure?.message
                == "\(scratch.path)/pipelines: no pipeline files (they are named <app>.yml); hello.yaml ends in .yaml: "
                + "rename it")
        let error = #expect(throws: PipelineErrors.self) {
            try PipelineLoader(environment: [:]).load(file: scratch("pipelines/hello.yaml"))
        }
        #expect(error?.errors.first?.message == "pipeline files are named <app>.yml (rename hello.yaml to hello.yml)")
    }

    @Test func slipwayVariablesInEnvPointAtTheStepsThatHaveThem() throws {
        let yaml = "repository: /srv/git/a.git\nenv:\n  UPLOADS: ${SLIPWAY_SHARED_DIR}/uploads\n"
        let error = #expect(throws: PipelineErrors.self) {
            try PipelineLoader(environment: [:]).load(yaml: yaml, app: "a", file: "a.yml")
        }
        #expect(
            error?.description
                == "a.yml:3:12: ${SLIPWAY_SHARED_DIR} is not set in the daemon's environment; SLIPWAY_* variables are "
                + "set only inside steps, so write $SLIPWAY_SHARED_DIR in a step's run")
    }

    @Test func smallSizesAreCountedInBytes() {
        #expect(ByteCount.text(0) == "0 bytes")
        #expect(ByteCount.text(1) == "1 byte")
        #expect(ByteCount.text(86) == "86 bytes")
        #expect(ByteCount.text(1536) == "1.5 KiB")
    }

    @Test func aTypoGetsTheClosestWord() {
        #expect(Suggestion.closest(to: "statsu", in: ["status", "deploy", "serve"]) == "status")
        #expect(Suggestion.closest(to: "helo", in: ["hello", "worker"]) == "hello")
        #expect(Suggestion.closest(to: "xyz", in: ["hello", "worker"]) == nil)
    }
}
