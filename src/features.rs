//! Table features: what a table's protocol and properties ask of a writer, and whether
//! lakewriter honours it or refuses the table before writing anything.
//!
//! Tables that Spark or Databricks made carry features lakewriter's own tables never have
//! (deletion vectors, column mapping, constraints ...). The Delta protocol (PROTOCOL.md,
//! "Table Features") says a writer must support every writer feature a table lists, or not
//! write. delta-rs checks its own list only at commit time, after the data files are
//! uploaded, and its check says nothing of what to do; this module decides up front, from the
//! snapshot's `protocol` and `metaData` actions, with a message naming the feature and the
//! way out. The decision works on the actions as JSON (delta-rs's snapshot serialised back
//! into the log's field names), so it sees every feature name, known to delta-rs or not.
//!
//! Every feature of the protocol is in [`FEATURES`] with how lakewriter treats it;
//! COMPATIBILITY.md is the same table for users.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

/// What a command is about to do to a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// `write --mode replace` (and its dry run).
    Replace,
    /// `write --mode merge` (and its dry run).
    Merge,
    /// `vacuum`: deletes files, so it must know every way a file can be referenced; and
    /// delta-rs commits its start and end, so it needs a table delta-rs may commit to.
    Vacuum,
}

/// How lakewriter treats a table feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Treatment {
    /// Writes follow the feature's rules (see the module that does: constraints, column
    /// mapping, deletion vectors in removes ...).
    Honoured,
    /// Writes are refused: lakewriter (or delta-rs underneath) does not follow its rules.
    /// The text says why and what to do.
    Refused(&'static str),
}

const APPEND_ONLY: &str = "delta.appendOnly = true (turn it off with ALTER TABLE ... SET \
                           TBLPROPERTIES ('delta.appendOnly' = 'false')) forbids";
const UNIFORM: &str = "Iceberg compatibility (UniForm) needs Iceberg metadata written with \
                       every commit; write with Spark, or turn UniForm off";
const VARIANT: &str = "lakewriter does not write VARIANT columns; write with Spark";
const CATALOG: &str = "the table's commits go through its catalog, not the log folder; write \
                       through the catalog (Spark with Unity Catalog)";

/// Every table feature of the Delta protocol, by its protocol name, and how lakewriter writes
/// tables that list it. A feature missing here (a newer one) is refused by name.
const FEATURES: &[(&str, Treatment)] = &[
    // Honoured by refusing what the table's `delta.appendOnly` forbids (see `refusal` and the
    // replace path), and generated columns by refusing tables that have one.
    ("appendOnly", Treatment::Honoured),
    ("invariants", Treatment::Honoured),
    ("checkConstraints", Treatment::Honoured),
    ("changeDataFeed", Treatment::Honoured),
    ("generatedColumns", Treatment::Honoured),
    ("columnMapping", Treatment::Honoured),
    ("deletionVectors", Treatment::Honoured),
    ("timestampNtz", Treatment::Honoured),
    ("timestampWithoutTimezone", Treatment::Honoured),
    ("v2Checkpoint", Treatment::Honoured),
    ("checkpointProtection", Treatment::Honoured),
    (
        "identityColumns",
        Treatment::Refused(
            "identity columns need values assigned from a high-water mark that lakewriter \
             does not track; write this table with Spark, or recreate it without IDENTITY",
        ),
    ),
    (
        "rowTracking",
        Treatment::Refused(
            "row tracking needs fresh row ids and commit versions on every added file, which \
             lakewriter does not assign; write with Spark, or drop the feature \
             (ALTER TABLE ... DROP FEATURE rowTracking, where your Delta version allows it)",
        ),
    ),
    (
        "clustering",
        Treatment::Refused(
            "liquid clustering tables have no date partitions for lakewriter to replace; write \
             with Spark, or use a table partitioned by date",
        ),
    ),
    (
        "domainMetadata",
        Treatment::Refused(
            "delta-rs, lakewriter's Delta engine, cannot commit to tables with domain metadata \
             yet (Spark adds it for row tracking and liquid clustering); write with Spark",
        ),
    ),
    (
        "inCommitTimestamp",
        Treatment::Refused(
            "in-commit timestamps must be written into every commit, which delta-rs does not \
             do; run ALTER TABLE ... SET TBLPROPERTIES ('delta.enableInCommitTimestamps' = \
             'false') and DROP FEATURE inCommitTimestamp, or write with Spark",
        ),
    ),
    (
        "typeWidening",
        Treatment::Refused(
            "files written before a type change hold the narrower type, which lakewriter's \
             readers do not widen; run ALTER TABLE ... DROP FEATURE typeWidening after a REORG, \
             or write with Spark",
        ),
    ),
    (
        "typeWidening-preview",
        Treatment::Refused("see typeWidening; write with Spark"),
    ),
    (
        "vacuumProtocolCheck",
        Treatment::Refused(
            "delta-rs, lakewriter's Delta engine, does not list this feature as supported and \
             refuses the commit; write with Spark, or ALTER TABLE ... DROP FEATURE \
             vacuumProtocolCheck",
        ),
    ),
    ("icebergCompatV1", Treatment::Refused(UNIFORM)),
    ("icebergCompatV2", Treatment::Refused(UNIFORM)),
    ("icebergCompatV3", Treatment::Refused(UNIFORM)),
    (
        "allowColumnDefaults",
        Treatment::Refused(
            "delta-rs, lakewriter's Delta engine, does not support column defaults and refuses \
             the commit; write with Spark, or drop the defaults and the feature",
        ),
    ),
    ("variantType", Treatment::Refused(VARIANT)),
    ("variantType-preview", Treatment::Refused(VARIANT)),
    ("variantShredding", Treatment::Refused(VARIANT)),
    ("variantShredding-preview", Treatment::Refused(VARIANT)),
    ("catalogManaged", Treatment::Refused(CATALOG)),
    ("catalogOwned-preview", Treatment::Refused(CATALOG)),
    (
        "materializePartitionColumns",
        Treatment::Refused(
            "partition values must also be written into the data files, which lakewriter does \
             not do; write with Spark",
        ),
    ),
];

/// The writer features that legacy protocol versions (before table features, writer
/// version 7) imply: version N implies every feature up to its own.
const LEGACY_WRITER_FEATURES: &[(i64, &str)] = &[
    (2, "appendOnly"),
    (2, "invariants"),
    (3, "checkConstraints"),
    (4, "changeDataFeed"),
    (4, "generatedColumns"),
    (5, "columnMapping"),
    (6, "identityColumns"),
];

/// Column mapping: how data files name the table's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnMapping {
    /// Files use the column names.
    None,
    /// Files use each column's `delta.columnMapping.physicalName`.
    Name,
    /// As `Name`, and readers match columns by Parquet field id.
    Id,
}

/// A rule every written row must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Constraint {
    /// How a message names it, e.g. `CHECK constraint quantity_positive`.
    pub(crate) name: String,
    /// A Spark SQL boolean expression over the table's (logical) column names.
    pub(crate) expression: String,
    /// The table feature it comes from: `checkConstraints`, `invariants`, or Spark's
    /// `char/varchar columns`.
    pub(crate) feature: &'static str,
}

/// What a table's `protocol` and `metaData` ask of writers.
#[derive(Debug, Clone, Default)]
pub(crate) struct TableFeatures {
    /// Every feature the protocol lists or its legacy versions imply.
    features: BTreeSet<String>,
    /// The table properties (`metaData.configuration`).
    properties: HashMap<String, String>,
    /// The top-level fields of the schema, as the log spells them.
    fields: Vec<Value>,
    /// Under column mapping: each top-level column's physical name and field id, by name.
    physical: HashMap<String, (String, Option<i64>)>,
}

impl TableFeatures {
    /// Reads the `protocol` and `metaData` actions as the log holds them (JSON).
    pub(crate) fn from_log(protocol: &Value, metadata: &Value) -> Self {
        let number = |key: &str| protocol.get(key).and_then(Value::as_i64).unwrap_or(1);
        let (reader, writer) = (number("minReaderVersion"), number("minWriterVersion"));
        let mut features = BTreeSet::new();
        for key in ["readerFeatures", "writerFeatures"] {
            if let Some(listed) = protocol.get(key).and_then(Value::as_array) {
                features.extend(listed.iter().filter_map(Value::as_str).map(str::to_string));
            }
        }
        if writer < 7 {
            let implied = LEGACY_WRITER_FEATURES.iter().filter(|(v, _)| writer >= *v);
            features.extend(implied.map(|(_, name)| name.to_string()));
        }
        if reader == 2 {
            features.insert("columnMapping".into());
        }
        let properties = metadata
            .get("configuration")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let fields = metadata
            .get("schemaString")
            .and_then(Value::as_str)
            .and_then(|schema| serde_json::from_str::<Value>(schema).ok())
            .and_then(|schema| schema.get("fields").and_then(Value::as_array).cloned())
            .unwrap_or_default();
        let physical = fields
            .iter()
            .filter_map(|f| {
                let name = f.get("name")?.as_str()?.to_string();
                let physical = f
                    .pointer("/metadata/delta.columnMapping.physicalName")?
                    .as_str()?
                    .to_string();
                let id = f
                    .pointer("/metadata/delta.columnMapping.id")
                    .and_then(Value::as_i64);
                Some((name, (physical, id)))
            })
            .collect();
        Self {
            features,
            properties,
            fields,
            physical,
        }
    }

    fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    fn flag(&self, key: &str) -> bool {
        self.property(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// Whether `delta.appendOnly` forbids removing data.
    pub(crate) fn append_only(&self) -> bool {
        self.features.contains("appendOnly") && self.flag("delta.appendOnly")
    }

    /// Whether lakewriter may write checkpoints: a table with v2 checkpoints needs them in
    /// that format, which delta-rs does not write. Checkpoints are optional for a writer.
    pub(crate) fn classic_checkpoints(&self) -> bool {
        !self.features.contains("v2Checkpoint")
            && self.property("delta.checkpointPolicy") != Some("v2")
    }

    /// Whether lakewriter may delete expired log files after a checkpoint: not under
    /// `checkpointProtection`, whose rules delta-rs's log clean-up does not follow.
    pub(crate) fn log_clean_up(&self) -> bool {
        !self.features.contains("checkpointProtection")
    }

    /// Whether files may carry deletion vectors (Spark's DELETE, UPDATE and MERGE leave them).
    pub(crate) fn deletion_vectors(&self) -> bool {
        self.features.contains("deletionVectors")
    }

    /// How data files name the columns.
    pub(crate) fn column_mapping(&self) -> ColumnMapping {
        if !self.features.contains("columnMapping") {
            return ColumnMapping::None;
        }
        match self.property("delta.columnMapping.mode") {
            Some("name") => ColumnMapping::Name,
            Some("id") => ColumnMapping::Id,
            _ => ColumnMapping::None,
        }
    }

    /// The table's CHECK constraints, column invariants and the lengths of Spark's CHAR and
    /// VARCHAR columns, in that order.
    pub(crate) fn constraints(&self) -> Vec<Constraint> {
        let mut constraints = Vec::new();
        if self.features.contains("checkConstraints") {
            let mut checks: Vec<_> = self
                .properties
                .iter()
                .filter_map(|(key, expression)| {
                    let name = key.strip_prefix("delta.constraints.")?;
                    Some(Constraint {
                        name: format!("CHECK constraint {name}"),
                        expression: expression.clone(),
                        feature: "checkConstraints",
                    })
                })
                .collect();
            checks.sort_by(|a, b| a.name.cmp(&b.name));
            constraints.extend(checks);
        }
        if self.features.contains("invariants") {
            for field in &self.fields {
                // `delta.invariants` holds `{"expression": {"expression": "<SQL>"}}` as text.
                let invariant = field
                    .pointer("/metadata/delta.invariants")
                    .and_then(Value::as_str)
                    .and_then(|text| serde_json::from_str::<Value>(text).ok());
                let expression = invariant
                    .as_ref()
                    .and_then(|v| v.pointer("/expression/expression"))
                    .and_then(Value::as_str);
                if let Some(expression) = expression {
                    let column = field.get("name").and_then(Value::as_str).unwrap_or("?");
                    constraints.push(Constraint {
                        name: format!("the invariant of column '{column}'"),
                        expression: expression.to_string(),
                        feature: "invariants",
                    });
                }
            }
        }
        // Spark keeps CHAR(n) and VARCHAR(n) as strings with the declared type in the
        // field's metadata, and refuses longer values on write; so does lakewriter (without
        // Spark's trimming of trailing spaces past the limit: such a value is refused too).
        for field in &self.fields {
            let declared = field
                .pointer("/metadata/__CHAR_VARCHAR_TYPE_STRING")
                .and_then(Value::as_str);
            let Some((name, declared)) = field.get("name").and_then(Value::as_str).zip(declared)
            else {
                continue;
            };
            let limit = declared
                .split_once('(')
                .and_then(|(_, rest)| rest.strip_suffix(')'))
                .and_then(|n| n.trim().parse::<u32>().ok());
            if let Some(limit) = limit {
                let quoted = format!("`{}`", name.replace('`', "``"));
                constraints.push(Constraint {
                    name: format!("the {} length of column '{name}'", declared.to_uppercase()),
                    expression: format!("{quoted} IS NULL OR length({quoted}) <= {limit}"),
                    feature: "char/varchar columns",
                });
            }
        }
        constraints
    }

    /// The top-level columns the schema declares NOT NULL.
    pub(crate) fn not_null_columns(&self) -> Vec<String> {
        self.columns_where(|f| f.get("nullable").and_then(Value::as_bool) == Some(false))
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// Under column mapping: a top-level column's physical name and Parquet field id.
    fn physical_name(&self, column: &str) -> Option<(&str, Option<i64>)> {
        self.physical
            .get(column)
            .map(|(name, id)| (name.as_str(), *id))
    }

    /// How data files and partition values name a top-level column, with its Parquet field
    /// id: its physical name under column mapping (`refusal` makes sure every column has
    /// one), else the column's own name.
    pub(crate) fn name_in_files<'a>(&'a self, column: &'a str) -> (&'a str, Option<i64>) {
        match self.column_mapping() {
            ColumnMapping::None => (column, None),
            ColumnMapping::Name | ColumnMapping::Id => {
                self.physical_name(column).unwrap_or((column, None))
            }
        }
    }

    /// The names of the top-level columns whose schema field (as the log spells it) passes
    /// `keep`.
    fn columns_where(&self, keep: impl Fn(&Value) -> bool) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|field| keep(field))
            .filter_map(|field| field.get("name").and_then(Value::as_str))
            .collect()
    }

    /// The top-level columns whose type (a nested struct, array or map) holds `text`.
    fn columns_whose_type_holds(&self, text: &str) -> Vec<&str> {
        self.columns_where(|f| f.get("type").is_some_and(|t| t.to_string().contains(text)))
    }

    /// Why lakewriter must not do `access` on this table, as (feature, message), or `None`
    /// when it may. Decided from the snapshot alone, before any file is written.
    pub(crate) fn refusal(&self, access: Access) -> Option<(String, String)> {
        // Known features in the order of `FEATURES` (the one a user acts on, rowTracking,
        // before the domainMetadata it brings along), then unknown ones.
        let known = FEATURES
            .iter()
            .filter(|(name, _)| self.features.contains(*name))
            .map(|(name, treatment)| (name.to_string(), Some(*treatment)));
        let unknown = self
            .features
            .iter()
            .filter(|f| !FEATURES.iter().any(|(name, _)| name == f))
            .map(|f| (f.clone(), None));
        for (feature, treatment) in known.chain(unknown) {
            match treatment {
                None => {
                    return Some((
                        feature,
                        "lakewriter does not know this feature, so it cannot follow its rules; \
                         write with an engine that supports it (Spark), or upgrade lakewriter"
                            .into(),
                    ));
                }
                // Vacuum too: delta-rs commits its start and end (and refuses these features
                // then), and Iceberg metadata sits beside the data, where vacuum would
                // delete it.
                Some(Treatment::Refused(why)) => return Some((feature, why.to_string())),
                Some(Treatment::Honoured) => {}
            }
        }
        if access == Access::Vacuum {
            return None;
        }
        if self.column_mapping() != ColumnMapping::None {
            // Nested fields have physical names of their own; lakewriter maps top-level
            // columns only, so it refuses rather than write nested fields under names Spark
            // would not read. A column without a physical name is a damaged schema.
            let nested = self.columns_whose_type_holds("\"fields\"");
            if !nested.is_empty() {
                return Some((
                    "columnMapping".into(),
                    format!(
                        "column(s) {nested:?} hold nested structs, whose fields column mapping \
                         renames too; lakewriter maps top-level columns only: write with Spark"
                    ),
                ));
            }
            let unnamed = self.columns_where(|f| {
                let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
                self.physical_name(name).is_none()
            });
            if !unnamed.is_empty() {
                return Some((
                    "columnMapping".into(),
                    format!(
                        "column(s) {unnamed:?} have no delta.columnMapping.physicalName, which \
                         column mapping needs to name them in data files; repair the table's \
                         schema with Spark"
                    ),
                ));
            }
        }
        // Invariants on nested fields (legacy) are not read by `constraints`: refuse rather
        // than write rows unchecked.
        let nested_invariants = self.columns_whose_type_holds("delta.invariants");
        if self.features.contains("invariants") && !nested_invariants.is_empty() {
            return Some((
                "invariants".into(),
                format!(
                    "column(s) {nested_invariants:?} have invariants on nested fields, which \
                     lakewriter does not check; write with Spark"
                ),
            ));
        }
        let generated =
            self.columns_where(|f| f.pointer("/metadata/delta.generationExpression").is_some());
        if self.features.contains("generatedColumns") && !generated.is_empty() {
            return Some((
                "generatedColumns".into(),
                format!(
                    "column(s) {generated:?} are generated from other columns, which lakewriter \
                     does not compute; write with Spark, or recreate the table without the \
                     generation expressions"
                ),
            ));
        }
        if access == Access::Merge && self.append_only() {
            return Some((
                "appendOnly".into(),
                format!("{APPEND_ONLY} the updates a merge makes; use --mode replace for new days"),
            ));
        }
        None
    }

    /// Whether rows checked and files written for `other` fit this table too: the same
    /// constraints, NOT NULL columns, column names in files and append-only rule. A run
    /// compares the table it reloads after losing a race with the one it started on.
    pub(crate) fn same_rules(&self, other: &TableFeatures) -> bool {
        self.constraints() == other.constraints()
            && self.not_null_columns() == other.not_null_columns()
            && self.column_mapping() == other.column_mapping()
            && self.physical == other.physical
            && self.append_only() == other.append_only()
    }

    /// Why a replace must not remove `files` data files, or `None` when it may: an
    /// append-only table forbids removing any. Decided before anything is written.
    pub(crate) fn removal_refusal(&self, files: usize) -> Option<(String, String)> {
        (files > 0 && self.append_only()).then(|| {
            (
                "appendOnly".into(),
                format!(
                    "{APPEND_ONLY} removing the {files} file(s) the scope's days hold; \
                     lakewriter can only add days that are empty here"
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(protocol: Value, configuration: Value, fields: Value) -> TableFeatures {
        let schema = json!({"type": "struct", "fields": fields}).to_string();
        TableFeatures::from_log(
            &protocol,
            &json!({"configuration": configuration, "schemaString": schema}),
        )
    }

    fn no_fields() -> Value {
        json!([])
    }

    #[test]
    fn lakewriters_own_protocol_needs_nothing() {
        let t = table(
            json!({"minReaderVersion": 1, "minWriterVersion": 2}),
            json!({"delta.checkpointInterval": "10"}),
            no_fields(),
        );
        for access in [Access::Replace, Access::Merge, Access::Vacuum] {
            assert_eq!(t.refusal(access), None);
        }
        assert!(!t.append_only());
        assert_eq!(t.column_mapping(), ColumnMapping::None);
        assert!(t.constraints().is_empty());
    }

    #[test]
    fn features_spark_lists_are_refused_or_honoured_by_name() {
        let spark = |features: &[&str]| {
            table(
                json!({"minReaderVersion": 3, "minWriterVersion": 7,
                       "readerFeatures": [], "writerFeatures": features}),
                json!({}),
                no_fields(),
            )
        };
        let honoured = spark(&[
            "deletionVectors",
            "invariants",
            "appendOnly",
            "timestampNtz",
        ]);
        assert_eq!(honoured.refusal(Access::Replace), None);
        let (feature, message) = spark(&["rowTracking", "domainMetadata", "appendOnly"])
            .refusal(Access::Replace)
            .unwrap();
        assert_eq!(
            feature, "rowTracking",
            "the feature the user turned on, by name"
        );
        assert!(message.contains("write with Spark"), "{message}");
        let (feature, _) = spark(&["someFutureFeature"])
            .refusal(Access::Merge)
            .unwrap();
        assert_eq!(feature, "someFutureFeature");
        assert!(
            spark(&["rowTracking", "domainMetadata"])
                .refusal(Access::Vacuum)
                .is_some(),
            "delta-rs's vacuum commits, and refuses these"
        );
        assert_eq!(honoured.refusal(Access::Vacuum), None);
        assert!(
            spark(&["icebergCompatV2"])
                .refusal(Access::Vacuum)
                .is_some()
        );
    }

    #[test]
    fn legacy_versions_imply_their_features() {
        let v6 = table(
            json!({"minReaderVersion": 1, "minWriterVersion": 6}),
            json!({}),
            no_fields(),
        );
        assert_eq!(v6.refusal(Access::Replace).unwrap().0, "identityColumns");
        let v2 = table(
            json!({"minReaderVersion": 2, "minWriterVersion": 5}),
            json!({"delta.columnMapping.mode": "name"}),
            no_fields(),
        );
        assert_eq!(v2.column_mapping(), ColumnMapping::Name);
        let mapped = |metadata: Value| {
            table(
                json!({"minReaderVersion": 2, "minWriterVersion": 5}),
                json!({"delta.columnMapping.mode": "id"}),
                json!([{"name": "a b", "type": "long", "nullable": true, "metadata": metadata}]),
            )
        };
        let named = mapped(json!({"delta.columnMapping.physicalName": "col-1",
                                  "delta.columnMapping.id": 7}));
        assert_eq!(named.name_in_files("a b"), ("col-1", Some(7)));
        assert_eq!(named.refusal(Access::Replace), None);
        let unnamed = mapped(json!({}));
        assert_eq!(unnamed.refusal(Access::Merge).unwrap().0, "columnMapping");
        // A constraint on a writer-2 table is not enforced by the protocol (Spark upgrades the
        // table to writer 3 when it adds one), so it is not read either.
        let v2_constraint = table(
            json!({"minReaderVersion": 1, "minWriterVersion": 2}),
            json!({"delta.constraints.positive": "quantity > 0"}),
            no_fields(),
        );
        assert!(v2_constraint.constraints().is_empty());
    }

    #[test]
    fn properties_decide_whether_a_listed_feature_is_active() {
        let fields = json!([
            {"name": "id", "type": "long", "nullable": false, "metadata": {}},
            {"name": "quantity", "type": "integer", "nullable": true, "metadata": {
                "delta.invariants": "{\"expression\":{\"expression\":\"quantity < 1000\"}}"}},
            {"name": "total", "type": "integer", "nullable": true, "metadata": {}},
            {"name": "code", "type": "string", "nullable": true, "metadata": {
                "__CHAR_VARCHAR_TYPE_STRING": "varchar(5)"}}
        ]);
        let t = table(
            json!({"minReaderVersion": 1, "minWriterVersion": 4}),
            json!({"delta.constraints.positive": "quantity > 0", "delta.appendOnly": "false"}),
            fields.clone(),
        );
        assert_eq!(t.refusal(Access::Merge), None);
        assert_eq!(t.not_null_columns(), ["id"]);
        let names: Vec<_> = t.constraints().into_iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "CHECK constraint positive",
                "the invariant of column 'quantity'",
                "the VARCHAR(5) length of column 'code'",
            ]
        );
        let append_only = table(
            json!({"minReaderVersion": 1, "minWriterVersion": 2}),
            json!({"delta.appendOnly": "true"}),
            no_fields(),
        );
        assert!(append_only.append_only());
        assert_eq!(append_only.refusal(Access::Replace), None);
        assert_eq!(append_only.removal_refusal(0), None, "new days are appends");
        assert_eq!(append_only.removal_refusal(2).unwrap().0, "appendOnly");
        assert_eq!(append_only.refusal(Access::Merge).unwrap().0, "appendOnly");
        let without_constraint = table(
            json!({"minReaderVersion": 1, "minWriterVersion": 4}),
            json!({"delta.appendOnly": "false"}),
            fields.clone(),
        );
        assert!(t.same_rules(&t.clone()));
        assert!(
            !without_constraint.same_rules(&t),
            "a constraint added meanwhile changes the rules"
        );
        let mut nested = fields.clone();
        nested[2]["type"] = json!({"type": "struct", "fields": [{"name": "n", "type": "integer",
            "nullable": true, "metadata": {"delta.invariants": "{\"expression\":{\"expression\":\"n > 0\"}}"}}]});
        let t = table(
            json!({"minReaderVersion": 1, "minWriterVersion": 2}),
            json!({}),
            nested,
        );
        assert_eq!(t.refusal(Access::Replace).unwrap().0, "invariants");
        let mut generated = fields;
        generated[2]["metadata"] = json!({"delta.generationExpression": "quantity * 2"});
        let t = table(
            json!({"minReaderVersion": 1, "minWriterVersion": 4}),
            json!({}),
            generated,
        );
        assert_eq!(t.refusal(Access::Replace).unwrap().0, "generatedColumns");
        assert_eq!(t.refusal(Access::Vacuum), None);
    }
}
