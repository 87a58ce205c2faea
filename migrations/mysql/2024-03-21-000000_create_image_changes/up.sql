-- A change log of the images table, filled by triggers, so that every
-- service process can find the ids changed since its last poll with one
-- range scan of the primary key, whoever wrote the row. Inserts, updates
-- (including those that leave updated_at alone) and deletes are all logged.
-- changed_at is the database's clock and is used only to prune old rows.
CREATE TABLE image_changes (
    seq BIGINT NOT NULL AUTO_INCREMENT,
    image_id BIGINT NOT NULL,
    changed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (seq),
    KEY image_changes_changed_at (changed_at)
) ENGINE = InnoDB;

CREATE TRIGGER images_log_insert AFTER INSERT ON images FOR EACH ROW
    INSERT INTO image_changes (image_id) VALUES (NEW.id);

-- An update that changes the id logs both the old and the new id.
CREATE TRIGGER images_log_update AFTER UPDATE ON images FOR EACH ROW
    INSERT INTO image_changes (image_id)
    SELECT NEW.id UNION SELECT OLD.id FROM DUAL WHERE OLD.id <> NEW.id;

CREATE TRIGGER images_log_delete AFTER DELETE ON images FOR EACH ROW
    INSERT INTO image_changes (image_id) VALUES (OLD.id);
