# Names vulture reports unused in src/ that are used after all (.ci/run:
# `vulture src vulture_whitelist.py --min-confidence 60`). Vulture matches
# by name alone, so each line keeps its name used everywhere; say why.
# A finding that is really dead is removed from src, never added here.
# ruff: noqa
_: object

# -- called by frameworks, not by our code ------------------------------------
me  # api/app.py: a FastAPI route, registered by its decorator
provenance  # api/provenance_routes.py: a FastAPI route
served_policy  # api/log_routes.py: a FastAPI route (GET /log/policy)
stock_stream  # api/query_routes.py: a FastAPI route (SSE)
health  # api/readiness.py: a FastAPI route
good_change  # api/listing_routes.py: FastAPI routes, one per action, made in a loop
tier_change  # (same)
get_account  # api/account_routes.py: a FastAPI route
home  # api/page_routes.py: the web pages, FastAPI routes
swagger_ui  # (same)
redoc  # (same)
dashboard  # (same)
dashboard_good  # (same)
explore  # (same)
explore_unit  # (same)
explore_good  # (same)
list_webhooks  # api/webhook_routes.py: a FastAPI route
get_webhook  # api/webhook_routes.py: a FastAPI route
domain_error  # api/problems.py: FastAPI exception handlers, registered by decorators
database_error  # api/problems.py
api_problem  # api/problems.py
invalid_request  # api/problems.py
http_error  # api/problems.py
metrics_auditor  # api/metrics.py: a FastAPI route
_.logThreads  # jsonlog.py: logging's module switches, read by logging.LogRecord
_.logProcesses  # (same)
_.logMultiprocessing  # (same)
collect  # api/metrics.py, verifier_node/app.py: prometheus_client's Collector interface
_exactly_one  # api/models.py: a pydantic model validator
_one_header_within_all  # config.py: a pydantic model validator
model_config  # pydantic models' and settings' configuration, read by pydantic
send_400_response  # api/server.py: overrides uvicorn's httptools protocol hook
eof_received  # api/server.py: an asyncio protocol callback
_.disconnected  # api/server.py: uvicorn's request cycle flag, read by uvicorn
to_stored_event  # store/eventstore.py: the eventsourcing Mapper interface
construct_mapper  # store/eventstore.py: an eventsourcing Application hook
application_recorder_class  # store/postgres.py: read by eventsourcing's factory
LedgerPostgresFactory  # store/postgres.py: named by PERSISTENCE_MODULE (store/database.py)
PrivateSQLiteFactory  # store/sqlitefiles.py: named by PERSISTENCE_MODULE (store/database.py)
_.row_factory  # sqlite3 connections and cursors read it (projections/replay.py, store/dialect.py, verify/sources.py)
__getattr__  # verify/__init__.py: a module's lazy attributes (PEP 562)
memo  # domain/model.py: the __deepcopy__ protocol's argument
__instancecheck__  # service/answers.py: isinstance(answer, Replayed), the metaclass protocol
_serve  # verify/pipeline.py: run by the child process's `python -c` command

# -- data: fields read by serialising the object, not by name ---------------------
variant_fingerprint  # domain/good.py: an event's field, part of its canonical JSON
latest_root  # verify/log.py: LogReport fields, read through asdict() (cli/verify.py)
keys_given  # verify/log.py
unsealed_events  # verify/log.py
channel_id  # service/answers.py: an answer's field, set from its JSON by Answer.read
minted_at  # service/answers.py
split_per_unit  # service/answers.py
sold_at  # service/answers.py
resold_at  # service/answers.py
refunded_acquisition  # service/answers.py
refunded_at  # service/answers.py
reserved_at  # service/answers.py
decided_at  # service/answers.py
released_at  # service/answers.py
joined_at  # service/answers.py
left_at  # service/answers.py
shared_available  # service/answers.py
set_at  # service/answers.py
imported_at  # service/answers.py
price_now  # service/answers.py
after_sold  # api/models.py: a price step's field, read by pydantic and dumped to the domain
first_delivery  # service/answers.py
redeemed_at  # service/answers.py
basis  # service/answers.py: Edition, "No. k of N"
opened_at  # service/answers.py: AccountOpened
moved_at  # service/answers.py: UnitMoved
transferred_at  # service/answers.py: UnitTransferred

# -- used by the tests and benchmarks: housekeeping and inspection -----------------
server_reachable  # store/postgres.py: tests/conftest.py, bench/common.py
create_database  # store/postgres.py: tests/conftest.py, bench/common.py
drop_database  # store/postgres.py: tests/conftest.py, bench/common.py
create_schema  # store/postgres.py: tests/conftest.py, bench/common.py
fresh_good  # service/ledger.py: a good with its variants read from the store, for tests/integration
by_check  # verify/report.py: findings counted per check, inspected by the verifier's tests
spilled  # verify/state.py: how much packed state went to disk, tests/unit/test_verify_scale.py

# -- webhooks (issue 17) ---------------------------------------------------------------
address_allowed  # domain/webhook.py: the interface's yes/no beside address_refusal, for callers and tests
on_header  # webhooks/http1.py: llhttp's callbacks, called by name by httptools' parser
on_body  # webhooks/http1.py
on_message_complete  # webhooks/http1.py
