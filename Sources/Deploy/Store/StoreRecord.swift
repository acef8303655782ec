import Foundation
import GRDB
import SlipwayAPI

/// The conventions every record in the SQLite store follows: snake_case columns, and timestamps as UTC text like
/// `2026-11-25 10:00:00.123` (`UTCTime.sqlText`), the format GRDB itself writes, so that the file reads the same in
/// `sqlite3` and stores written before this type existed still load. (GRDB's own date coding goes through
/// `DateFormatter`, which starts ICU: resident memory in the idle daemon, and a formatter call on every write.)
public protocol StoreRecord: FetchableRecord, EncodableRecord {}

extension StoreRecord {
    public static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy { .convertFromSnakeCase }
    public static var databaseColumnEncodingStrategy: DatabaseColumnEncodingStrategy { .convertToSnakeCase }

    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy {
        .custom { UTCTime.sqlText($0) }
    }

    public static func databaseDateDecodingStrategy(for column: String) -> DatabaseDateDecodingStrategy {
        .custom { value in
            switch value.storage {
            case .int64(let seconds): Date(timeIntervalSince1970: TimeInterval(seconds))
            case .double(let seconds): Date(timeIntervalSince1970: seconds)
            case .string(let text): UTCTime.parse(text)
            case .null, .blob: nil
            }
        }
    }
}

extension Deployment: StoreRecord, PersistableRecord {
    public static let databaseTableName = "deployment"
}

extension StepRecord: StoreRecord, PersistableRecord {
    public static let databaseTableName = "step"
}

extension Release: StoreRecord, PersistableRecord {
    public static let databaseTableName = "release"
}

extension AppState: StoreRecord, PersistableRecord {
    public static let databaseTableName = "app_state"
}
