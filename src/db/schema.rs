// Written by hand, not by `diesel print-schema`, because one description must
// fit the MySQL and the SQLite table (see migrations/).

diesel::table! {
    images (id) {
        id -> BigInt,
        name -> Text,
        os_type -> Text,
        os_name -> Text,
        description -> Text,
        source_path -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    image_changes (seq) {
        seq -> BigInt,
        image_id -> BigInt,
        changed_at -> Timestamp,
    }
}
