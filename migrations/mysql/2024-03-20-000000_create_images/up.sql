-- TIMESTAMP stores a UTC instant and converts on the way in and out with the
-- session time_zone, so a row reads back as the same instant whatever the
-- time_zone of the server or of the session that wrote it. The service's
-- sessions use +00:00 (diesel sets it on connect). The range ends at
-- 2038-01-19 03:14:07 UTC; DATETIME would reach year 9999 but stores wall
-- clock times that depend on every writer's session.
CREATE TABLE images (
    id BIGINT NOT NULL AUTO_INCREMENT,
    name VARCHAR(255) NOT NULL,
    os_type VARCHAR(32) NOT NULL,
    os_name VARCHAR(64) NOT NULL,
    description TEXT NOT NULL,
    source_path VARCHAR(1024) NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    CONSTRAINT images_name_unique UNIQUE (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
