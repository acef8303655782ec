import Foundation

// The answers that wrap lists, the error object, and the request bodies.

extension API {
    public struct AppList: Codable, Sendable, Equatable {
        public var apps: [App]
        public init(apps: [App]) { self.apps = apps }
    }

    public struct DeploymentList: Codable, Sendable, Equatable {
        public var deployments: [Deployment]
        public init(deployments: [Deployment]) { self.deployments = deployments }
    }

    public struct ReleaseList: Codable, Sendable, Equatable {
        public var releases: [Release]
        public init(releases: [Release]) { self.releases = releases }
    }

    /// `GET /api/v1/apps/{app}/processes`, and the answer of a restart.
    public struct ProcessList: Codable, Sendable, Equatable {
        public var processes: [Process]
        public init(processes: [Process]) { self.processes = processes }
    }

    /// `event: process` on `/api/v1/events`: an instance of an app's process changed status.
    public struct ProcessEvent: Codable, Sendable, Equatable {
        public var app: String
        public var process: Process
        public init(app: String, process: Process) {
            self.app = app
            self.process = process
        }
    }

    /// `POST /api/v1/apps/{app}/restart`: one process, or (nil) all of them.
    public struct RestartRequest: Codable, Sendable, Equatable {
        public var process: String?
        public init(process: String? = nil) { self.process = process }
    }

    public struct NodeList: Codable, Sendable, Equatable {
        public var nodes: [Node]
        public init(nodes: [Node]) { self.nodes = nodes }
    }

    /// A forge webhook's answer: the apps the delivery matched, and the deployments it started.
    public struct WebhookResult: Codable, Sendable, Equatable {
        public var matched: [String]
        public var deployments: [Deployment]
        public init(matched: [String], deployments: [Deployment]) {
            self.matched = matched
            self.deployments = deployments
        }
    }

    /// `{"status": "ok"}`.
    public struct Status: Codable, Sendable, Equatable {
        public var status: String
        public init(status: String) { self.status = status }
    }

    /// `{"error": {"code": "not_found", "message": "…"}}`.
    public struct ErrorBody: Codable, Sendable, Equatable {
        public struct Detail: Codable, Sendable, Equatable {
            public var code: String
            public var message: String
        }

        public var error: Detail

        public init(code: String, message: String) {
            error = Detail(code: code, message: message)
        }
    }

    /// `POST /api/v1/apps/{app}/deploy`.
    public struct DeployRequest: Codable, Sendable, Equatable {
        /// A branch, tag or sha; nil or empty means the app's branch.
        public var ref: String?
        public init(ref: String? = nil) { self.ref = ref }
    }

    /// `POST /api/v1/apps/{app}/rollback`.
    public struct RollbackRequest: Codable, Sendable, Equatable {
        public var to: Target?
        public init(to: Target? = nil) { self.to = to }

        /// `{"to": 42}` names a release; `{"to": "abc1234"}` a commit.
        public enum Target: Codable, Sendable, Equatable {
            case release(Int64)
            case commit(String)

            public init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let id = try? container.decode(Int64.self) {
                    self = .release(id)
                } else if let sha = try? container.decode(String.self) {
                    self = .commit(sha)
                } else {
                    throw DecodingError.typeMismatch(
                        Int64.self,
                        .init(codingPath: decoder.codingPath, debugDescription: "'to' is a release id or a commit sha"))
                }
            }

            public func encode(to encoder: any Encoder) throws {
                var container = encoder.singleValueContainer()
                switch self {
                case .release(let id): try container.encode(id)
                case .commit(let sha): try container.encode(sha)
                }
            }
        }
    }

    /// `POST /hooks/push`, sent by the git hook through `slipway notify`.
    public struct PushNotice: Codable, Sendable, Equatable {
        public var app: String
        public var ref: String
        /// The sha the ref pointed at before (all zeros for a new ref).
        public var before: String?
        public var after: String
        /// Only from the gated (`pre-receive`) hook: where git keeps the pushed objects until it accepts the push.
        public var gate: Gate?

        public init(app: String, ref: String, before: String?, after: String, gate: Gate? = nil) {
            self.app = app
            self.ref = ref
            self.before = before
            self.after = after
            self.gate = gate
        }

        public struct Gate: Codable, Sendable, Equatable {
            /// Git's quarantine object directories (`GIT_QUARANTINE_PATH`), which hold the pushed objects.
            public var objectDirectories: [String]

            public init(objectDirectories: [String]) {
                self.objectDirectories = objectDirectories
            }
        }
    }
}
