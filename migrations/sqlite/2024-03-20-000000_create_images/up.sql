-- SQLite has no time zone handling: timestamps are stored as UTC text in
-- the form 'YYYY-MM-DD HH:MM:SS', which is what diesel reads and writes.
CREATE TABLE images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    os_type TEXT NOT NULL,
    os_name TEXT NOT NULL,
    description TEXT NOT NULL,
    source_path TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%S', 'now')),
    updated_at TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%S', 'now'))
);

-- Matches MySQL's ON UPDATE CURRENT_TIMESTAMP: an update that leaves
-- updated_at unchanged moves it to the current time.
CREATE TRIGGER images_touch_updated_at
AFTER UPDATE ON images
FOR EACH ROW WHEN NEW.updated_at = OLD.updated_at
BEGIN
    UPDATE images
    SET updated_at = strftime('%Y-%m-%d %H:%M:%S', 'now')
    WHERE id = NEW.id;
END;
