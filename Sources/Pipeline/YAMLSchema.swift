import Yams

/// What a YAML scalar means under YAML 1.1, the schema Yams and most tools that read pipeline files follow: the
/// rules of `Yams.Resolver.default`, written with Swift's own `Regex`. That resolver compiles them with
/// `NSRegularExpression`, which starts ICU's regular expressions and character data; the idle daemon kept about
/// 0.6 MB more of ICU resident for it.
enum YAMLSchema {
    /// The tag a node resolves to: an explicit tag (a quoted scalar is `!!str`), else the first rule a plain
    /// scalar matches in full, else `!!str`; `!!map` and `!!seq` for the collections.
    static func tag(of node: Node) -> Tag.Name {
        // (`Tag.name` is internal to Yams; `description` is its raw value.)
        guard case .scalar(let scalar) = node, Tag.Name(rawValue: scalar.tag.description) == .implicit else {
            return Resolver.basic.resolveTag(of: node)
        }
        return tag(ofPlain: scalar.string)
    }

    static func tag(ofPlain text: String) -> Tag.Name {
        for (name, rule) in rules where (try? rule.wholeMatch(in: text)) != nil { return name }
        return .str
    }

    // The order is Resolver.default's: the first match wins ("0" is an int before it is a float). The literals are
    // multi-line, where whitespace does not count; `\x20` is a space.
    nonisolated(unsafe) private static let rules: [(Tag.Name, Regex<Substring>)] = [
        (.bool, #/yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF/#),
        (
            .int,
            #/
            [-+]?0b[0-1_]+ | [-+]?0o?[0-7_]+ | [-+]?(?:0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+
            | [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
            /#
        ),
        (
            .float,
            #/
            [-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)? | \.[0-9_]+(?:[eE][-+][0-9]+)?
            | [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)
            /#
        ),
        (.merge, #/<</#),
        (.null, #/~|null|Null|NULL|/#),
        (
            .timestamp,
            #/
            [0-9]{4}-[0-9]{2}-[0-9]{2}
            | [0-9]{4}-[0-9]{1,2}-[0-9]{1,2} (?:[Tt]|[\x20\t]+) [0-9]{1,2}:[0-9]{2}:[0-9]{2} (?:\.[0-9]*)?
              (?:[\x20\t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?
            /#
        ),
        (.value, #/=/#),
    ]
}
