// One keyed record per product, as the pricing and inventory services keep them: read one,
// read many by id, and replace one (PUT semantics: 201 when new, 204 when replaced).
'use strict';

const { idList } = require('./service');

// table: the SQL table; fields: its columns besides id; check(body): an error or null.
function recordRoutes(app, db, { path, table, fields, check }) {
  const cols = ['id', ...fields].join(', ');

  app.get(`${path}/:id`, async (req, reply) => {
    const { rows } = await db.query(`SELECT ${cols} FROM ${table} WHERE id = $1`, [req.params.id]);
    return rows[0] || reply.code(404).send({ error: 'not found' });
  });

  app.get(path, async (req) => {
    const sql = `SELECT ${cols} FROM ${table} WHERE id = ANY($1)`;
    return (await db.query(sql, [idList(req.query)])).rows;
  });

  app.put(`${path}/:id`, async (req, reply) => {
    const body = req.body || {};
    const error = body.id !== undefined && body.id !== req.params.id
      ? 'id in the body differs from the path' : check(body);
    if (error) return reply.code(400).send({ error });
    const values = [req.params.id, ...fields.map((f) => body[f])];
    const sets = fields.map((f) => `${f} = EXCLUDED.${f}`).join(', ');
    const params = values.map((_, i) => `$${i + 1}`).join(', ');
    const { rows } = await db.query(
      `INSERT INTO ${table} (${cols}) VALUES (${params})
       ON CONFLICT (id) DO UPDATE SET ${sets} RETURNING (xmax = 0) AS inserted`, values);
    return reply.code(rows[0].inserted ? 201 : 204).send();
  });
}

module.exports = { recordRoutes };
