DROP TRIGGER images_touch_updated_at;
DROP TABLE images;
