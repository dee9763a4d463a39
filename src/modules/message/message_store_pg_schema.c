/* message_store_pg_schema.c: the message store's schema on PostgreSQL: the tables
 * of the SQLite schema with the same names and columns (INTEGER as bigint, ids as
 * identity columns), and the server functions that store a batch of messages in one
 * call (message_store_pg_batch.c calls message_post_batch).
 *
 * rooms and room_members leave room on their pages (fillfactor), so the updates of
 * last_seq and read_seq that every batch makes stay on the page (HOT updates, no
 * index writes). The functions plan with enable_seqscan off: their statements are
 * all key lookups, and a plan cached while the tables were small (or not analyzed
 * yet) would otherwise keep scanning them whole as they grow. Array columns are read
 * with unnest, never by subscript (a subscript into a text array walks it). */
#include "message_store_pg.h"

/* message_post_batch after its CREATE: order is what follows the INSERT's WHERE
 * (migration 2 orders the rows). */
#define MPG_POST_BATCH_FN(order) \
    " FUNCTION message_post_batch(p_room bigint[], p_sid bigint[], p_sname text[],\n" \
    "                                   p_body text[], p_cmid text[], p_created bigint[])\n" \
    "RETURNS TABLE (r_k int, r_status int, r_id bigint, r_room bigint, r_seq bigint,\n" \
    "               r_created bigint, r_sender text, r_body text, r_cmid text,\n" \
    "               r_members bigint[])\n" \
    "LANGUAGE plpgsql\n" \
    "SET enable_seqscan = off\n" \
    "AS $f$\n" \
    "DECLARE\n" \
    "  v_rooms bigint[];\n" \
    "  v_first bigint[];\n" \
    "  v_st int[];\n" \
    "  v_seq bigint[];\n" \
    "  v_id bigint[];\n" \
    "  v_planned int;\n" \
    "  v_done int;\n" \
    "BEGIN\n" \
    "  SELECT l.o_rooms, l.o_seqs INTO v_rooms, v_first FROM message_lock_rooms(p_room) l;\n" \
    "  -- st: 0 to store, 1 a repeat, 403, 404.\n" \
    "  SELECT array_agg(s.st ORDER BY s.o), array_agg(s.seq ORDER BY s.o),\n" \
    "         count(*) FILTER (WHERE s.st = 0)\n" \
    "    INTO v_st, v_seq, v_planned\n" \
    "    FROM (SELECT c.o, c.st,\n" \
    "                 CASE WHEN c.st = 0 THEN c.l + row_number() OVER (PARTITION BY c.rid, c.st\n" \
    "                                                                 ORDER BY c.o) END AS seq\n" \
    "            FROM (SELECT b.o, b.rid, b.l,\n" \
    "                         CASE WHEN b.refuse IS NOT NULL THEN b.refuse\n" \
    "                              WHEN b.cmid IS NULL THEN 0\n" \
    "                              WHEN b.seen OR row_number() OVER (PARTITION BY b.sid, b.cmid,\n" \
    "                                                 b.refuse IS NULL ORDER BY b.o) > 1 THEN 1\n" \
    "                              ELSE 0 END AS st\n" \
    "                    FROM (SELECT t.o, t.rid, t.sid, t.cmid, u.l,\n" \
    "                                 CASE WHEN u.id IS NULL THEN 404\n" \
    "                                      WHEN m.member IS NULL THEN 403 END AS refuse,\n" \
    "                                 d.seen IS NOT NULL AS seen\n" \
    "                            FROM unnest(p_room, p_sid, p_cmid) WITH ORDINALITY\n" \
    "                                   AS t(rid, sid, cmid, o)\n" \
    "                            LEFT JOIN unnest(v_rooms, v_first) AS u(id, l) ON u.id = t.rid\n" \
    "                            LEFT JOIN (SELECT q.rid, q.sid, 1 AS member\n" \
    "                                         FROM (SELECT DISTINCT x.rid, x.sid\n" \
    "                                                 FROM unnest(p_room, p_sid) AS x(rid, sid)) q\n" \
    "                                         CROSS JOIN LATERAL (\n" \
    "                                           SELECT 1 FROM room_members rm\n" \
    "                                             WHERE rm.room_id = q.rid AND rm.user_id = q.sid\n" \
    "                                             LIMIT 1) e) m\n" \
    "                              ON m.rid = t.rid AND m.sid = t.sid\n" \
    "                            LEFT JOIN LATERAL (SELECT 1 AS seen FROM messages d\n" \
    "                                               WHERE t.cmid IS NOT NULL\n" \
    "                                                 AND d.sender_id = t.sid\n" \
    "                                                 AND d.client_msg_id = t.cmid\n" \
    "                                               LIMIT 1) d ON true) b) c) s;\n" \
    "  WITH ins AS (\n" \
    "    INSERT INTO messages (room_id, seq, sender_id, sender, body, client_msg_id, created_at)\n" \
    "      SELECT t.rid, t.seq, t.sid, t.sname, t.body, t.cmid, t.created\n" \
    "        FROM unnest(p_room, p_sid, p_sname, p_body, p_cmid, p_created, v_st, v_seq)\n" \
    "               AS t(rid, sid, sname, body, cmid, created, st, seq)\n" \
    "        WHERE t.st = 0\n" order \
    "      ON CONFLICT DO NOTHING\n" \
    "      RETURNING id, room_id, seq)\n" \
    "  SELECT array_agg(x.id ORDER BY t.o), count(x.id) INTO v_id, v_done\n" \
    "    FROM unnest(p_room, v_seq) WITH ORDINALITY AS t(rid, seq, o)\n" \
    "    LEFT JOIN ins x ON x.room_id = t.rid AND x.seq = t.seq;\n" \
    "  IF v_done < v_planned THEN\n" \
    "    DELETE FROM messages WHERE id = ANY (v_id);\n" \
    "    RETURN QUERY SELECT * FROM message_post_each(p_room, p_sid, p_sname, p_body, p_cmid,\n" \
    "                                                 p_created);\n" \
    "    RETURN;\n" \
    "  END IF;\n" \
    "  RETURN QUERY\n" \
    "    SELECT (t.o - 1)::int,\n" \
    "           CASE WHEN t.st = 0 THEN 201\n" \
    "                WHEN t.st <> 1 THEN t.st\n" \
    "                WHEN d.id IS NULL THEN 500\n" \
    "                WHEN d.room_id = t.rid THEN 200 ELSE 409 END,\n" \
    "           coalesce(t.id, d.id), coalesce(d.room_id, t.rid), coalesce(t.seq, d.seq),\n" \
    "           CASE WHEN t.st = 0 THEN t.created ELSE d.created_at END,\n" \
    "           d.sender, d.body, d.client_msg_id, NULL::bigint[]\n" \
    "      FROM unnest(p_room, p_sid, p_cmid, p_created, v_st, v_seq, v_id) WITH ORDINALITY\n" \
    "             AS t(rid, sid, cmid, created, st, seq, id, o)\n" \
    "      LEFT JOIN LATERAL (SELECT m.id, m.room_id, m.seq, m.created_at, m.sender, m.body,\n" \
    "                                m.client_msg_id\n" \
    "                           FROM messages m\n" \
    "                           WHERE t.st = 1 AND m.sender_id = t.sid\n" \
    "                             AND m.client_msg_id = t.cmid\n" \
    "                           LIMIT 1) d ON true;\n" \
    "  RETURN QUERY\n" \
    "    SELECT -1, 0, NULL::bigint, e.o_room, NULL::bigint, NULL::bigint, NULL::text,\n" \
    "           NULL::text, NULL::text, e.o_members\n" \
    "      FROM message_batch_end(p_room, p_sid, v_seq, v_rooms) e;\n" \
    "END\n" \
    "$f$;\n"

static const char schema_v1[] =
    "CREATE TABLE rooms (\n"
    "  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n"
    "  name text NOT NULL,\n"
    "  kind text NOT NULL CHECK (kind IN ('group', 'direct')),\n"
    "  owner_id bigint NOT NULL,\n"
    "  dm_key text UNIQUE,\n"
    "  last_seq bigint NOT NULL DEFAULT 0,\n"
    "  created_at bigint NOT NULL) WITH (fillfactor = 50);\n"
    "CREATE TABLE room_members (\n"
    "  room_id bigint NOT NULL REFERENCES rooms(id),\n"
    "  user_id bigint NOT NULL,\n"
    "  username text NOT NULL,\n"
    "  read_seq bigint NOT NULL DEFAULT 0,\n"
    "  joined_at bigint NOT NULL,\n"
    "  PRIMARY KEY (room_id, user_id)) WITH (fillfactor = 70);\n"
    "CREATE INDEX room_members_by_user ON room_members (user_id, room_id);\n"
    "CREATE TABLE messages (\n"
    "  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n"
    "  room_id bigint NOT NULL REFERENCES rooms(id),\n"
    "  seq bigint NOT NULL,\n"
    "  sender_id bigint NOT NULL,\n"
    "  sender text NOT NULL,\n"
    "  body text NOT NULL,\n"
    "  client_msg_id text,\n"
    "  created_at bigint NOT NULL,\n"
    "  UNIQUE (room_id, seq));\n"
    "CREATE UNIQUE INDEX messages_client_id ON messages (sender_id, client_msg_id)\n"
    "  WHERE client_msg_id IS NOT NULL;\n"
    "-- The rooms of a batch (sorted, those that exist) locked in id order: two writers\n"
    "-- lock the rooms they share in the same order and wait for each other's COMMIT.\n"
    "CREATE FUNCTION message_lock_rooms(p_room bigint[], OUT o_rooms bigint[],\n"
    "                                   OUT o_seqs bigint[])\n"
    "LANGUAGE sql\n"
    "SET enable_seqscan = off\n"
    "AS $f$\n"
    "  SELECT coalesce(array_agg(q.id ORDER BY q.id), '{}'),\n"
    "         coalesce(array_agg(q.last_seq ORDER BY q.id), '{}')\n"
    "    FROM (SELECT r.id, r.last_seq FROM rooms r WHERE r.id = ANY (p_room)\n"
    "          ORDER BY r.id FOR NO KEY UPDATE) q\n"
    "$f$;\n"
    "-- After the messages: last_seq of each room to its highest seq given, the senders'\n"
    "-- read markers up to their last message, and each room's members for the fan-out.\n"
    "CREATE FUNCTION message_batch_end(p_room bigint[], p_sid bigint[], p_seq bigint[],\n"
    "                                  p_rooms bigint[])\n"
    "RETURNS TABLE (o_room bigint, o_members bigint[])\n"
    "LANGUAGE plpgsql\n"
    "SET enable_seqscan = off\n"
    "AS $f$\n"
    "BEGIN\n"
    "  UPDATE rooms r SET last_seq = u.l\n"
    "    FROM (SELECT t.rid, max(t.s) AS l FROM unnest(p_room, p_seq) AS t(rid, s)\n"
    "          WHERE t.s IS NOT NULL GROUP BY t.rid) u\n"
    "    WHERE r.id = u.rid AND r.last_seq < u.l;\n"
    "  UPDATE room_members m SET read_seq = u.s\n"
    "    FROM (SELECT t.rid, t.sid, max(t.s) AS s\n"
    "            FROM unnest(p_room, p_sid, p_seq) AS t(rid, sid, s)\n"
    "            WHERE t.s IS NOT NULL GROUP BY t.rid, t.sid) u\n"
    "    WHERE m.room_id = u.rid AND m.user_id = u.sid AND m.read_seq < u.s;\n"
    "  RETURN QUERY\n"
    "    SELECT m.room_id, array_agg(m.user_id ORDER BY m.user_id)\n"
    "      FROM room_members m WHERE m.room_id = ANY (p_rooms) GROUP BY m.room_id;\n"
    "END\n"
    "$f$;\n"
    "-- A batch message by message: each INSERT skips a row that breaks a uniqueness,\n"
    "-- a skipped one is a repeat (its first message answers) or a refusal (500), and\n"
    "-- only a stored one takes a seq. For batches that race with another writer.\n"
    "CREATE FUNCTION message_post_each(p_room bigint[], p_sid bigint[], p_sname text[],\n"
    "                                  p_body text[], p_cmid text[], p_created bigint[])\n"
    "RETURNS TABLE (r_k int, r_status int, r_id bigint, r_room bigint, r_seq bigint,\n"
    "               r_created bigint, r_sender text, r_body text, r_cmid text,\n"
    "               r_members bigint[])\n"
    "LANGUAGE plpgsql\n"
    "SET enable_seqscan = off\n"
    "AS $f$\n"
    "DECLARE\n"
    "  n int := coalesce(cardinality(p_room), 0);\n"
    "  v_rooms bigint[];\n"
    "  v_last bigint[];\n"
    "  v_member boolean[];\n"
    "  v_seq bigint[] := array_fill(NULL::bigint, ARRAY[n]);\n"
    "  v_id bigint;\n"
    "  x int;\n"
    "  d messages%ROWTYPE;\n"
    "BEGIN\n"
    "  SELECT l.o_rooms, l.o_seqs INTO v_rooms, v_last FROM message_lock_rooms(p_room) l;\n"
    "  SELECT array_agg(m.user_id IS NOT NULL ORDER BY t.o) INTO v_member\n"
    "    FROM unnest(p_room, p_sid) WITH ORDINALITY AS t(rid, sid, o)\n"
    "    LEFT JOIN room_members m ON m.room_id = t.rid AND m.user_id = t.sid;\n"
    "  FOR i IN 1 .. n LOOP\n"
    "    r_k := i - 1; r_status := 500; r_id := NULL; r_room := p_room[i]; r_seq := NULL;\n"
    "    r_created := NULL; r_sender := NULL; r_body := NULL; r_cmid := NULL;\n"
    "    x := array_position(v_rooms, p_room[i]);\n"
    "    IF x IS NULL THEN\n"
    "      r_status := 404;\n"
    "    ELSIF NOT v_member[i] THEN\n"
    "      r_status := 403;\n"
    "    ELSE\n"
    "      INSERT INTO messages (room_id, seq, sender_id, sender, body, client_msg_id,\n"
    "                            created_at)\n"
    "        VALUES (p_room[i], v_last[x] + 1, p_sid[i], p_sname[i], p_body[i], p_cmid[i],\n"
    "                p_created[i])\n"
    "        ON CONFLICT DO NOTHING RETURNING messages.id INTO v_id;\n"
    "      IF FOUND THEN\n"
    "        v_last[x] := v_last[x] + 1;\n"
    "        v_seq[i] := v_last[x];\n"
    "        r_status := 201; r_id := v_id; r_seq := v_last[x]; r_created := p_created[i];\n"
    "      ELSE\n"
    "        SELECT * INTO d FROM messages\n"
    "          WHERE sender_id = p_sid[i] AND client_msg_id = p_cmid[i];\n"
    "        IF FOUND THEN\n"
    "          r_status := CASE WHEN d.room_id = p_room[i] THEN 200 ELSE 409 END;\n"
    "          r_id := d.id; r_room := d.room_id; r_seq := d.seq; r_created := d.created_at;\n"
    "          r_sender := d.sender; r_body := d.body; r_cmid := d.client_msg_id;\n"
    "        END IF;\n"
    "      END IF;\n"
    "    END IF;\n"
    "    RETURN NEXT;\n"
    "  END LOOP;\n"
    "  RETURN QUERY\n"
    "    SELECT -1, 0, NULL::bigint, e.o_room, NULL::bigint, NULL::bigint, NULL::text,\n"
    "           NULL::text, NULL::text, e.o_members\n"
    "      FROM message_batch_end(p_room, p_sid, v_seq, v_rooms) e;\n"
    "END\n"
    "$f$;\n"
    "-- A batch in one call (message_store_pg_batch.c). Set-based: one statement plans\n"
    "-- every message (404, 403, a repeat of a stored or an earlier message of the batch,\n"
    "-- or stored with the next seq of its room) and one INSERT stores the planned rows.\n"
    "-- When that INSERT skipped a row (a repeat committed meanwhile by another writer),\n"
    "-- the rows are taken back and message_post_each does the batch instead.\n"
    "CREATE" MPG_POST_BATCH_FN("");

/* The planned rows go into the indexes in (sender_id, client_msg_id) order: two
 * writers storing the same client ids in different rooms (no room lock between
 * them) then wait for each other in one order instead of deadlocking. */
static const char schema_v2[] =
    "CREATE OR REPLACE" MPG_POST_BATCH_FN("        ORDER BY t.sid, t.cmid\n");

/* PL/pgSQL plans each statement anew for its parameters (a custom plan) for as long as
 * the generic plan looks dearer, and for these statements over arrays it always does:
 * planning the batch's statements cost about 1 ms a call, most of a one-message
 * batch's time (1.5 ms a call, 0.56 ms with the generic plan; 64 messages: 1.66 and
 * 1.76 ms). The indexes are what these statements must use whatever the arrays hold
 * (enable_seqscan = off above), so the generic plan is the one wanted. */
static const char schema_v3[] =
    "ALTER FUNCTION message_post_batch(bigint[], bigint[], text[], text[], text[], bigint[])"
    " SET plan_cache_mode = force_generic_plan;\n"
    "ALTER FUNCTION message_post_each(bigint[], bigint[], text[], text[], text[], bigint[])"
    " SET plan_cache_mode = force_generic_plan;\n"
    "ALTER FUNCTION message_lock_rooms(bigint[]) SET plan_cache_mode = force_generic_plan;\n"
    "ALTER FUNCTION message_batch_end(bigint[], bigint[], bigint[], bigint[])"
    " SET plan_cache_mode = force_generic_plan;\n";

const struct db_migration msg_pg_migrations[] = {
    { 1, schema_v1 },
    { 2, schema_v2 },
    { 3, schema_v3 },
};
const int msg_pg_migrations_count =
    (int)(sizeof(msg_pg_migrations) / sizeof(msg_pg_migrations[0]));
