import Foundation

/// What `slipway validate` found in the files and folders it was given.
public struct PipelineValidation: Sendable {
    /// The pipeline files that were read.
    public var files: [String] = []
    /// Every problem, as `file:line:column: message`, in file order.
    public var problems: [PipelineError] = []

    /// Loads every pipeline file among `paths` (a folder stands for the `.yml` files in it), collecting all the
    /// problems rather than stopping at the first. A path that does not exist is an error of its own.
    public init(paths: [String], loader: PipelineLoader) throws(PipelineValidationFailure) {
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw PipelineValidationFailure(message: "\(path): no such file or folder")
            }
            if isDirectory.boolValue {
                do {
                    files += try PipelineLoader.pipelineFiles(in: path)
                } catch {
                    throw PipelineValidationFailure(message: "\(path): cannot read the folder")
                }
            } else {
                files.append(path)
            }
        }
        for file in files {
            do {
                _ = try loader.load(file: file)
            } catch {
                problems += error.errors
            }
        }
    }

    /// `3 pipeline files, 1 error`.
    public var summary: String {
        "\(files.count) pipeline file\(files.count == 1 ? "" : "s"), "
            + "\(problems.count) error\(problems.count == 1 ? "" : "s")"
    }
}

/// A path given to `slipway validate` that cannot be read at all.
public struct PipelineValidationFailure: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
