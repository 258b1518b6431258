-- Restore-drill check for the shop database (used by probes/examples/restore-drill.yaml).
-- One query; the drill compares the first column of the first row with `expect` (here 0).
-- Counts orders that point at no user or carry an impossible total: a restore that lost rows of
-- users, or a backup taken mid-migration, shows up here even when every table has rows.
select count(*)
from orders o
left join users u on u.id = o.user_id
where u.id is null
   or o.total < 0
