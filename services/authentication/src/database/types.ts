import type { ColumnType, Generated } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export interface AccountsTable {
  id: Generated<string>;
  email: string;
  display_name: string | null;
  is_blocked: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface CharactersTable {
  id: Generated<string>;
  account_id: string;
  eve_character_id: string;
  eve_character_name: string;
  corp_id: string;
  corp_name: string;
  alliance_id: string | null;
  alliance_name: string | null;
  portrait_url: string | null;
  scopes: Generated<string[]>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface Database {
  accounts: AccountsTable;
  characters: CharactersTable;
}
