package sqlstore

// Helpers the methods still moving here from db/sqlite and db/postgres
// will call (this file goes when they have all moved).
var _ = []any{}
