-- Migration: 002_add_battle_value_view
-- Description: ISK destroyed per battle, read by the enrichment API
-- Created: 2025-12-06

-- A view, not a copy: killmails stay owned by the battles service.
CREATE OR REPLACE VIEW enrichment.battle_value AS
SELECT b.id AS battle_id,
       b.system_id,
       COUNT(k.killmail_id) AS killmails,
       COALESCE(SUM(k.isk_value), 0) AS isk_destroyed
FROM public.battles b
LEFT JOIN public.killmails k ON k.battle_id = b.id
GROUP BY b.id, b.system_id;
