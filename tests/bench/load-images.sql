-- Fills the images table with @rows rows like the reference record. Row 1
-- is the reference record itself, whose body is 226 bytes. The others
-- differ in id and name, because names must be unique. The timestamps are
-- written in UTC, the time zone in which the service's sessions read them.
SET time_zone = '+00:00';
-- MariaDB 10.11 stops a recursive CTE after max_recursive_iterations,
-- 1000 by default.
SET SESSION max_recursive_iterations = @rows;
INSERT INTO images
    (id, name, os_type, os_name, description, source_path, created_at, updated_at)
WITH RECURSIVE seq (n) AS (
    SELECT 1
    UNION ALL
    SELECT n + 1 FROM seq WHERE n < @rows
)
SELECT
    n,
    IF(n = 1, 'CentOS-7.9-x64', CONCAT('CentOS-7.9-x64-', n)),
    'linux',
    'CentOS',
    'CentOS 7.9 64位基础镜像',
    '/path/to/image/file.iso',
    '2024-03-20 10:30:00',
    '2024-03-20 10:30:00'
FROM seq;
