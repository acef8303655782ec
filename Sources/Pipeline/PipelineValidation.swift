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
                let found: [String]
                do {
                    found = try PipelineLoader.pipelineFiles(in: path)
                } catch {
                    throw PipelineValidationFailure(message: "\(path): cannot read the folder")
                }
                // A folder with nothing to check is a mistake (the wrong folder, or files named .yaml), not a pass.
                guard !found.isEmpty else { throw Self.noPipelineFiles(in: path) }
                files += found
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

    /// Why a folder holds no pipeline file, naming the `.yaml` files that were probably meant to be ones.
    static func noPipelineFiles(in folder: String) -> PipelineValidationFailure {
        let yaml = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
            .filter { $0.hasSuffix(".yaml") && !$0.hasPrefix(".") }.sorted()
        var message = "\(folder): no pipeline files (they are named <app>.yml)"
        if !yaml.isEmpty {
            let shown = yaml.prefix(3).joined(separator: ", ") + (yaml.count > 3 ? ", …" : "")
            message += yaml.count == 1 ? "; \(shown) ends in .yaml: rename it" : "; \(shown) end in .yaml: rename them"
        }
        return PipelineValidationFailure(message: message)
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
