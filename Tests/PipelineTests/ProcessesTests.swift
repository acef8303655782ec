import Pipeline
import Testing

/// `processes:`, as the contract writes it.
@Suite struct ProcessDefinitionTests {
    let loader = PipelineLoader(environment: [:])

    @Test func readsTheContractExample() throws {
        let yaml = """
            repository: /srv/git/a.git
            processes:
              web:
                run: python3 app.py --port $PORT
                port: 8000
                instances: 2
                stop_timeout: 3s
              worker:
                run: ./bin/worker
            health:
              http: /up
            """
        let pipeline = try loader.load(yaml: yaml, app: "a", file: "a.yml")
        #expect(
            pipeline.processes == [
                ProcessDefinition(
                    name: "web", run: "python3 app.py --port $PORT", port: 8000, instances: 2, stopTimeout: .seconds(3)),
                ProcessDefinition(name: "worker", run: "./bin/worker"),
            ])
        #expect(pipeline.health?.probe == .path("/up"))
    }

    @Test func theShortFormIsAProcfileLine() throws {
        let pipeline = try loader.load(
            yaml: "repository: /x\nprocesses:\n  web: python3 -m http.server $PORT\n", app: "a", file: "a.yml")
        #expect(pipeline.processes == [ProcessDefinition(name: "web", run: "python3 -m http.server $PORT")])
        #expect(pipeline.processes[0].instances == 1)
        #expect(pipeline.processes[0].stopTimeout == .seconds(10))
    }

    @Test func aFullURLStaysAURL() throws {
        let pipeline = try loader.load(
            yaml: "repository: /x\nhealth:\n  http: http://127.0.0.1:9000/up\n", app: "a", file: "a.yml")
        #expect(pipeline.health?.probe == .http("http://127.0.0.1:9000/up"))
    }

    @Test func everyMistakeInProcessesIsReportedWithItsPlace() throws {
        let yaml = """
            repository: /x
            processes:
              web:
                run: ""
              api:
                run: x
                port: 0
              "bad name": x
            health:
              http: //up
            """
        let error = #expect(throws: PipelineErrors.self) { try loader.load(yaml: yaml, app: "a", file: "a.yml") }
        #expect(error?.errors.map { "\($0.line):\($0.column)" } == ["4:10", "7:11", "8:3", "10:9"])
    }

    @Test func noProcessesIsTheDefault() throws {
        let pipeline = try loader.load(yaml: "repository: /x\n", app: "a", file: "a.yml")
        #expect(pipeline.processes.isEmpty)
    }
}
