-- The change log of migrations/mysql, for SQLite: triggers log every
-- insert, update and delete of images with an increasing sequence number.
CREATE TABLE image_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL,
    changed_at TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%S', 'now'))
);

CREATE INDEX image_changes_changed_at ON image_changes (changed_at);

CREATE TRIGGER images_log_insert AFTER INSERT ON images FOR EACH ROW
BEGIN
    INSERT INTO image_changes (image_id) VALUES (NEW.id);
END;

CREATE TRIGGER images_log_update AFTER UPDATE ON images FOR EACH ROW
BEGIN
    INSERT INTO image_changes (image_id) VALUES (NEW.id);
    INSERT INTO image_changes (image_id) SELECT OLD.id WHERE OLD.id <> NEW.id;
END;

CREATE TRIGGER images_log_delete AFTER DELETE ON images FOR EACH ROW
BEGIN
    INSERT INTO image_changes (image_id) VALUES (OLD.id);
END;
