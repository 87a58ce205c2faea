DROP TRIGGER images_log_delete;
DROP TRIGGER images_log_update;
DROP TRIGGER images_log_insert;
DROP TABLE image_changes;
