package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"time"

	zsqlite "zombiezen.com/go/sqlite"

	"doorman/db/sqlstore"
)

// The hot reads (the session check, the token check, the Security page's
// lists: sqlstore.Dialect.Hot) do not go through database/sql. They run
// on SQLite's statement API directly (zombiezen.com/go/sqlite, over the
// same modernc.org/sqlite library and the same file), on connections of
// their own:
//
//   - each connection keeps its statements prepared, and a column is read
//     straight into the caller's field: database/sql and the driver box
//     every value into an interface and fetch every column's name and
//     declared type on every execution (the session check's 26-column
//     read, the store call: 117 allocations and ~21 µs of CPU through
//     database/sql, 28 and ~10 µs this way; docs/BENCHMARKS.md);
//   - each is opened as the database/sql readers are (the same file and
//     read-only mode, query_only, the same busy timeout), and their errors
//     are SQLite's result codes, which IsUnavailable classifies as it does
//     the driver's;
//   - no cancellation: each is one indexed read of a few rows, and in WAL
//     mode a reader never waits for a writer (a busy reader waits the busy
//     timeout at most). A request already past its deadline gets no query,
//     as with database/sql.
//
// The store still decides: every call reads the file as it is now; nothing
// is cached but the compiled statements.

// hotPool holds the hot reads' connections. A connection is taken for one
// read (a row, or rows until they are closed) and put back: a buffered
// channel, so taking one costs a channel operation (zombiezen's own pool,
// sqlitex.Pool, measured ~15 µs per take and put).
type hotPool struct {
	uri   string
	flags zsqlite.OpenFlags
	idle  chan *hotConn

	mu     sync.Mutex
	open   int // connections open, idle or taken
	max    int
	closed bool
	// dialed counts connections ever opened (a test's view of reuse).
	dialed int
}

// newHotPool returns a pool of at most max connections to the database
// at uri (a file: URI with its mode query), opened with flags.
func newHotPool(uri string, flags zsqlite.OpenFlags, max int) *hotPool {
	return &hotPool{uri: uri, flags: flags | zsqlite.OpenURI, idle: make(chan *hotConn, max), max: max}
}

var errHotClosed = errors.New("db: the store is closed")

// fill opens every connection the pool may hold, so that a store's open
// files are all there from its start (a load adds none: the soak drill
// counts descriptors before and after) and a file the hot reads cannot
// open fails Open rather than the first request.
func (p *hotPool) fill() error {
	for range p.max {
		c, err := p.take(context.Background())
		if err != nil {
			return err
		}
		defer p.put(c, false)
	}
	return nil
}

// take returns an idle connection, a new one if fewer than max are open,
// or waits for one to be put back (or ctx to end).
func (p *hotPool) take(ctx context.Context) (*hotConn, error) {
	select {
	case c := <-p.idle:
		return c, nil
	default:
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errHotClosed
	}
	if p.open < p.max {
		p.open++
		p.dialed++
		p.mu.Unlock()
		c, err := p.dial()
		if err != nil {
			p.mu.Lock()
			p.open--
			p.mu.Unlock()
			return nil, err
		}
		return c, nil
	}
	p.mu.Unlock()
	select {
	case c := <-p.idle:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dial opens one connection as the database/sql readers are opened (see
// Open): query_only, and a busy timeout of 5 s. Its page cache is 512 KiB,
// not SQLite's default 2 MiB: the hot reads are indexed lookups spread
// over the whole file (1M sessions), whose interior b-tree pages fit in
// that, and the leaves are in the kernel's page cache anyway. Measured
// on the real binary (bench/NOTES.md): RSS −11 MB in the page and API
// phases, and no CPU lost (the page 496–613 → 416–438 µs).
func (p *hotPool) dial() (*hotConn, error) {
	c, err := zsqlite.OpenConn(p.uri, p.flags)
	if err != nil {
		return nil, err
	}
	c.SetBusyTimeout(5 * time.Second)
	for _, pragma := range []string{`PRAGMA query_only = 1`, `PRAGMA cache_size = -512`} {
		st, _, perr := c.PrepareTransient(pragma)
		if perr == nil {
			_, perr = st.Step()
			st.Finalize()
		}
		if perr != nil {
			c.Close()
			return nil, fmt.Errorf("db: hot read connection: %s: %w", pragma, perr)
		}
	}
	return &hotConn{Conn: c, stmts: map[string]*zsqlite.Stmt{}}, nil
}

// hotConn is one connection and its prepared statements.
type hotConn struct {
	*zsqlite.Conn
	stmts map[string]*zsqlite.Stmt
}

// prepare returns query prepared on c, once per connection (closing the
// connection finalizes them). Not zombiezen's Conn.Prepare for a statement
// seen before: it clears the bindings, and clearing them expires a
// statement whose plan may depend on a bound value (SQLite's expmask), so
// each read would parse its SQL again (measured: 17 → 60 µs per session
// check). Every read binds every parameter anew instead.
func (c *hotConn) prepare(query string) (*zsqlite.Stmt, error) {
	if st := c.stmts[query]; st != nil {
		return st, nil
	}
	st, err := c.Prepare(query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

// put gives c back. A connection whose read failed is closed instead
// (broken is set): the next read opens a fresh one, as database/sql
// replaces a bad connection.
func (p *hotPool) put(c *hotConn, broken bool) {
	p.mu.Lock()
	if p.closed || broken {
		p.open--
		p.mu.Unlock()
		c.Close()
		return
	}
	p.mu.Unlock()
	p.idle <- c // never blocks: at most max are open
}

// close closes the idle connections, and each taken one as it is put back.
func (p *hotPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for {
		select {
		case c := <-p.idle:
			p.mu.Lock()
			p.open--
			p.mu.Unlock()
			c.Close()
		default:
			return
		}
	}
}

// hotQ is sqlstore.Q for the hot reads, on the hot pool. Exec (never
// used by a hot read) goes to the database/sql readers.
type hotQ struct{ d *dialect }

func (q hotQ) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return sqlQ{q.d.s.read}.Exec(ctx, query, args...)
}

func (q hotQ) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	r, err := q.d.s.hot.start(ctx, query, args)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (q hotQ) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return hotRow{p: q.d.s.hot, ctx: ctx, query: query, args: args}
}

// start takes a connection, prepares query on it (once per connection)
// and binds args: rows ready for their first Next, which give the
// connection back when they end.
func (p *hotPool) start(ctx context.Context, query string, args []any) (*hotRows, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := p.take(ctx)
	if err != nil {
		return nil, err
	}
	r, err := c.query(query, args)
	if err != nil {
		p.put(c, false) // the statement's fault, not the connection's
		return nil, err
	}
	r.p = p
	return r, nil
}

// query prepares query on c (once per connection) and binds args: rows
// ready for their first Next, on c, which they do not give back.
func (c *hotConn) query(query string, args []any) (*hotRows, error) {
	st, err := c.prepare(query)
	if err != nil {
		return nil, err
	}
	if n := st.BindParamCount(); n != len(args) {
		return nil, fmt.Errorf("db: %d arguments for %d parameters", len(args), n)
	}
	if err := bind(st, args); err != nil {
		return nil, err
	}
	return &hotRows{c: c, st: st}, nil
}

// exec runs a statement of no rows (BEGIN, COMMIT) on c.
func (c *hotConn) exec(query string) error {
	st, err := c.prepare(query)
	if err != nil {
		return err
	}
	_, err = st.Step()
	if rerr := st.Reset(); err == nil {
		err = rerr
	}
	return err
}

// batch runs the reads on one connection in one read transaction: one
// snapshot of the database for all of them (the page's lists agree with
// each other), and SQLite takes its shared-memory read lock once, not
// per read (each take and release is a system call, fcntl: ~10% of the
// Security page's CPU when each of its reads took its own).
func (p *hotPool) batch(ctx context.Context, reads []sqlstore.Read) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := p.take(ctx)
	if err != nil {
		return err
	}
	if err := c.exec(`BEGIN`); err != nil {
		p.put(c, true)
		return err
	}
	for _, rd := range reads {
		rows, qerr := c.query(rd.SQL, rd.Args)
		if qerr != nil {
			err = qerr
			break
		}
		if err = rd.Take(rows, nil); err == nil {
			err = rows.err
		}
		if err != nil {
			break
		}
	}
	end := `COMMIT`
	if err != nil {
		end = `ROLLBACK`
	}
	if xerr := c.exec(end); xerr != nil {
		p.put(c, true)
		return errors.Join(err, xerr)
	}
	p.put(c, false)
	return err
}

// hotRows are a hot read's rows. Read alone (p set), the connection goes
// back at Close, or when Next finds no more; in a batch, the batch has it.
type hotRows struct {
	p   *hotPool // nil in a batch
	c   *hotConn
	st  *zsqlite.Stmt
	err error
	row bool
}

func (r *hotRows) Next() bool {
	if r.c == nil {
		return false
	}
	r.row, r.err = r.st.Step()
	if !r.row {
		r.release()
	}
	return r.row
}

func (r *hotRows) Scan(dest ...any) error {
	if !r.row {
		return errors.New("db: Scan called without a row")
	}
	return scanColumns(r.st, dest)
}

func (r *hotRows) Err() error { return r.err }

func (r *hotRows) Close() { r.release() }

// release resets the statement and gives the connection back (read
// alone), once.
func (r *hotRows) release() {
	if r.c == nil {
		return
	}
	broken := r.err != nil
	if err := r.st.Reset(); err != nil && !broken {
		broken = true
		r.err = err
	}
	if r.p != nil {
		r.p.put(r.c, broken)
	}
	r.c, r.st, r.row = nil, nil, false
}

// columns names the columns of the rows (for Dialect.Columns).
func (r *hotRows) columns() []string {
	if r.st == nil {
		return nil
	}
	out := make([]string, r.st.ColumnCount())
	for i := range out {
		out[i] = r.st.ColumnName(i)
	}
	return out
}

// hotRow is QueryRow's row: the read runs at Scan, and its connection is
// back before Scan returns.
type hotRow struct {
	p     *hotPool
	ctx   context.Context
	query string
	args  []any
}

func (r hotRow) Scan(dest ...any) error {
	rows, err := r.p.start(r.ctx, r.query, r.args)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if rows.err != nil {
			return rows.err
		}
		return sqlstore.ErrNoRows
	}
	return scanColumns(rows.st, dest)
}

// bind binds args to the statement's parameters 1…n, converting them as
// database/sql's default converter would.
func bind(st *zsqlite.Stmt, args []any) error {
	for i, a := range args {
		if err := bindOne(st, i+1, a); err != nil {
			return err
		}
	}
	return nil
}

// bindOne binds a to parameter n.
func bindOne(st *zsqlite.Stmt, n int, a any) error {
	switch v := a.(type) {
	case nil:
		st.BindNull(n)
	case string:
		st.BindText(n, v)
	case int64:
		st.BindInt64(n, v)
	case int:
		st.BindInt64(n, int64(v))
	case int32:
		st.BindInt64(n, int64(v))
	case bool:
		st.BindBool(n, v)
	case []byte:
		if v == nil {
			st.BindNull(n)
		} else {
			st.BindBytes(n, v)
		}
	case float64:
		st.BindFloat(n, v)
	default:
		rv := reflect.ValueOf(a)
		switch rv.Kind() {
		case reflect.String:
			st.BindText(n, rv.String())
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			st.BindInt64(n, rv.Int())
		case reflect.Uint8, reflect.Uint16, reflect.Uint32:
			st.BindInt64(n, int64(rv.Uint()))
		case reflect.Bool:
			st.BindBool(n, rv.Bool())
		case reflect.Pointer:
			if rv.IsNil() {
				st.BindNull(n)
				return nil
			}
			return bindOne(st, n, rv.Elem().Interface())
		default:
			return fmt.Errorf("db: hot read argument %d: unsupported type %T", n, a)
		}
	}
	return nil
}

// scanColumns reads the current row's columns into dest, converting as
// database/sql's Scan does for the destinations the store uses (a NULL
// into a destination that cannot hold one is an error, as there).
func scanColumns(st *zsqlite.Stmt, dest []any) error {
	if n := st.ColumnCount(); len(dest) != n {
		return fmt.Errorf("db: expected %d destination arguments in Scan, not %d", n, len(dest))
	}
	for i, d := range dest {
		if err := scanColumn(st, i, d); err != nil {
			return fmt.Errorf("db: Scan error on column index %d, name %q: %w", i, st.ColumnName(i), err)
		}
	}
	return nil
}

func scanColumn(st *zsqlite.Stmt, i int, dest any) error {
	typ := st.ColumnType(i)
	switch d := dest.(type) {
	case *string:
		switch typ {
		case zsqlite.TypeText, zsqlite.TypeBlob:
			*d = st.ColumnText(i)
		case zsqlite.TypeInteger:
			*d = strconv.FormatInt(st.ColumnInt64(i), 10)
		case zsqlite.TypeFloat:
			*d = strconv.FormatFloat(st.ColumnFloat(i), 'g', -1, 64)
		default:
			return errors.New("converting NULL to string is unsupported")
		}
		return nil
	case *int64:
		v, err := columnInt(st, i, typ)
		if err == nil {
			*d = v
		}
		return err
	case *int:
		v, err := columnInt(st, i, typ)
		if err == nil {
			*d = int(v)
		}
		return err
	case *uint32:
		v, err := columnInt(st, i, typ)
		if err != nil {
			return err
		}
		if v < 0 || v > 1<<32-1 {
			return fmt.Errorf("converting %d to uint32: value out of range", v)
		}
		*d = uint32(v)
		return nil
	case *bool:
		if typ != zsqlite.TypeInteger {
			return fmt.Errorf("converting %s to bool is unsupported", typ)
		}
		switch v := st.ColumnInt64(i); v {
		case 0, 1:
			*d = v == 1
		default:
			return fmt.Errorf("couldn't convert %d into type bool", v)
		}
		return nil
	case *[]byte:
		if typ == zsqlite.TypeNull {
			*d = nil
			return nil
		}
		// A copy: the column's memory is SQLite's until the next step.
		// An empty BLOB or text reads as empty, not nil, as the driver
		// reads it (TestZeroLengthBlobs).
		b := make([]byte, st.ColumnLen(i))
		st.ColumnBytes(i, b)
		*d = b
		return nil
	case **int64:
		if typ == zsqlite.TypeNull {
			*d = nil
			return nil
		}
		v, err := columnInt(st, i, typ)
		if err != nil {
			return err
		}
		*d = &v
		return nil
	case **string:
		if typ == zsqlite.TypeNull {
			*d = nil
			return nil
		}
		var v string
		if err := scanColumn(st, i, &v); err != nil {
			return err
		}
		*d = &v
		return nil
	case *any:
		*d = columnValue(st, i, typ)
		return nil
	case sql.Scanner:
		return d.Scan(columnValue(st, i, typ))
	}
	// Named types (a kind or a status declared over string or int).
	rv := reflect.ValueOf(dest)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("destination not a pointer: %T", dest)
	}
	e := rv.Elem()
	switch e.Kind() {
	case reflect.String:
		var s string
		if err := scanColumn(st, i, &s); err != nil {
			return err
		}
		e.SetString(s)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v, err := columnInt(st, i, typ)
		if err != nil {
			return err
		}
		if e.OverflowInt(v) {
			return fmt.Errorf("converting %d to %s: value out of range", v, e.Type())
		}
		e.SetInt(v)
		return nil
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v, err := columnInt(st, i, typ)
		if err != nil {
			return err
		}
		if v < 0 || e.OverflowUint(uint64(v)) {
			return fmt.Errorf("converting %d to %s: value out of range", v, e.Type())
		}
		e.SetUint(uint64(v))
		return nil
	case reflect.Bool:
		var b bool
		if err := scanColumn(st, i, &b); err != nil {
			return err
		}
		e.SetBool(b)
		return nil
	}
	return fmt.Errorf("unsupported Scan, storing %s into type %T", typ, dest)
}

// columnInt reads an integer column (or text holding one, as database/sql
// parses it).
func columnInt(st *zsqlite.Stmt, i int, typ zsqlite.ColumnType) (int64, error) {
	switch typ {
	case zsqlite.TypeInteger:
		return st.ColumnInt64(i), nil
	case zsqlite.TypeText:
		v, err := strconv.ParseInt(st.ColumnText(i), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("converting text %q to int64: %w", st.ColumnText(i), err)
		}
		return v, nil
	case zsqlite.TypeNull:
		return 0, errors.New("converting NULL to int64 is unsupported")
	}
	return 0, fmt.Errorf("converting %s to int64 is unsupported", typ)
}

// columnValue is the column as the driver would give it to database/sql.
func columnValue(st *zsqlite.Stmt, i int, typ zsqlite.ColumnType) any {
	switch typ {
	case zsqlite.TypeInteger:
		return st.ColumnInt64(i)
	case zsqlite.TypeFloat:
		return st.ColumnFloat(i)
	case zsqlite.TypeText:
		return st.ColumnText(i)
	case zsqlite.TypeBlob:
		b := make([]byte, st.ColumnLen(i))
		st.ColumnBytes(i, b)
		return b
	}
	return nil
}
