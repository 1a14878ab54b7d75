//! What common extensions bring into a database, so that a use of it can be traced back to the
//! `CREATE EXTENSION` that provides it: the objects an extension creates are not in the migration
//! text, so this table stands in for the extension's install script. A use of any of them is a
//! dependency on `Object::Extension`.

use crate::facts::Object;

/// The objects a well-known extension provides.
#[derive(Debug)]
pub struct Provides {
    pub extension: &'static str,
    pub types: &'static [&'static str],
    pub functions: &'static [&'static str],
    pub access_methods: &'static [&'static str],
    /// Operator classes, matched exactly or, when ending in `_`, as a prefix.
    pub operator_classes: &'static [&'static str],
    pub operators: &'static [&'static str],
}

pub const KNOWN: &[Provides] = &[
    Provides {
        extension: "vector",
        types: &["vector", "halfvec", "sparsevec"],
        functions: &[
            "l2_distance",
            "cosine_distance",
            "inner_product",
            "l1_distance",
            "vector_dims",
            "vector_norm",
            "l2_normalize",
            "binary_quantize",
            "subvector",
            "hamming_distance",
            "jaccard_distance",
        ],
        access_methods: &["hnsw", "ivfflat"],
        operator_classes: &[
            "vector_",
            "halfvec_",
            "sparsevec_",
            "bit_hamming_ops",
            "bit_jaccard_ops",
        ],
        operators: &["<->", "<=>", "<#>", "<+>", "<~>", "<%>"],
    },
    Provides {
        extension: "uuid-ossp",
        types: &[],
        functions: &[
            "uuid_generate_v1",
            "uuid_generate_v1mc",
            "uuid_generate_v3",
            "uuid_generate_v4",
            "uuid_generate_v5",
            "uuid_nil",
        ],
        access_methods: &[],
        operator_classes: &[],
        operators: &[],
    },
    Provides {
        extension: "pgcrypto",
        types: &[],
        functions: &[
            "digest",
            "hmac",
            "crypt",
            "gen_salt",
            "gen_random_bytes",
            "pgp_sym_encrypt",
            "pgp_sym_decrypt",
        ],
        access_methods: &[],
        operator_classes: &[],
        operators: &[],
    },
    Provides {
        extension: "pg_trgm",
        types: &[],
        functions: &["similarity", "word_similarity", "show_trgm"],
        access_methods: &[],
        operator_classes: &["gin_trgm_ops", "gist_trgm_ops"],
        operators: &["%", "<%", "%>"],
    },
    Provides {
        extension: "citext",
        types: &["citext"],
        functions: &[],
        access_methods: &[],
        operator_classes: &[],
        operators: &[],
    },
    Provides {
        extension: "hstore",
        types: &["hstore"],
        functions: &["akeys", "avals", "skeys", "svals", "hstore_to_json"],
        access_methods: &[],
        operator_classes: &[],
        operators: &[],
    },
    Provides {
        extension: "ltree",
        types: &["ltree", "lquery", "ltxtquery"],
        functions: &["subltree", "nlevel", "lca"],
        access_methods: &[],
        operator_classes: &[],
        operators: &[],
    },
    Provides {
        extension: "postgis",
        types: &["geometry", "geography", "box2d", "box3d"],
        functions: &[
            "st_makepoint",
            "st_setsrid",
            "st_distance",
            "st_dwithin",
            "st_geomfromtext",
            "st_intersects",
        ],
        access_methods: &[],
        operator_classes: &[],
        operators: &[],
    },
    Provides {
        extension: "btree_gist",
        types: &[
            "gbtreekey4",
            "gbtreekey8",
            "gbtreekey16",
            "gbtreekey32",
            "gbtreekey_var",
        ],
        functions: &[],
        access_methods: &[],
        operator_classes: &[
            "gist_int4_ops",
            "gist_int8_ops",
            "gist_text_ops",
            "gist_uuid_ops",
            "gist_timestamptz_ops",
        ],
        operators: &[],
    },
];

impl Provides {
    pub fn has_type(&self, name: &str) -> bool {
        self.types.contains(&name)
    }

    pub fn has_function(&self, name: &str) -> bool {
        self.functions.contains(&name)
    }

    pub fn has_access_method(&self, name: &str) -> bool {
        self.access_methods.contains(&name)
    }

    /// Exactly, or by prefix for entries ending in `_`.
    pub fn has_operator_class(&self, name: &str) -> bool {
        self.operator_classes.iter().any(|k| {
            if k.ends_with('_') {
                name.starts_with(k)
            } else {
                name == *k
            }
        })
    }

    pub fn has_operator(&self, name: &str) -> bool {
        self.operators.contains(&name)
    }
}

/// The table entry for an extension.
pub fn known(extension: &str) -> Option<&'static Provides> {
    KNOWN.iter().find(|p| p.extension == extension)
}

/// Which known extension provides this object, if any.
pub fn provider_of(object: &Object) -> Option<&'static str> {
    KNOWN.iter().find_map(|p| {
        let hit = match object {
            Object::Type(t) => p.has_type(t),
            Object::Function(f) => p.has_function(f),
            Object::AccessMethod(m) => p.has_access_method(m),
            Object::OperatorClass(c) => p.has_operator_class(c),
            Object::Operator(o) => p.has_operator(o),
            _ => false,
        };
        hit.then_some(p.extension)
    })
}
