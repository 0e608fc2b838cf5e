import type { ColumnType, Generated } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export interface BattlesTable {
  id: Generated<string>;
  system_id: string;
  started_at: Timestamp;
  ended_at: Timestamp | null;
  total_isk_destroyed: Generated<string>;
  participant_count: number | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface KillmailsTable {
  killmail_id: string;
  battle_id: string | null;
  victim_character_id: string | null;
  ship_type_id: string;
  isk_value: string | null;
  occurred_at: Timestamp;
}

export interface Database {
  battles: BattlesTable;
  killmails: KillmailsTable;
}
