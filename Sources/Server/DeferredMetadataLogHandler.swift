import Logging

/// swift-log's `StreamLogHandler`, with its metadata kept aside until a message is written.
///
/// `StreamLogHandler` formats its whole metadata again whenever one key is set, and Hummingbird sets one
/// (`hb.request.id`) on every request, logged or not, which showed in profiles of a flood of webhook deliveries.
/// This handler keeps the metadata as a dictionary and hands it to the stream handler with each message that is
/// actually written, so the formatting happens only then.
public struct DeferredMetadataLogHandler: LogHandler {
    private var base: StreamLogHandler
    public var metadata: Logger.Metadata = [:]

    public init(_ base: StreamLogHandler) {
        self.base = base
    }

    /// Writes to standard error, as `StreamLogHandler.standardError` does.
    public static func standardError(label: String) -> DeferredMetadataLogHandler {
        DeferredMetadataLogHandler(StreamLogHandler.standardError(label: label))
    }

    public var logLevel: Logger.Level {
        get { base.logLevel }
        set { base.logLevel = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { base.metadataProvider }
        set { base.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var event = event
        if !metadata.isEmpty {
            // A key given with the message wins over the same key set on the logger, as in StreamLogHandler.
            event.metadata = metadata.merging(event.metadata ?? [:]) { _, explicit in explicit }
        }
        base.log(event: event)
    }
}
