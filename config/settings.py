"""Settings, read from the environment through the typed helpers in ``config.env``.

Every variable is listed in ``.env.example``. Unset, the platform runs on its embedded defaults:
SQLite and kombu's filesystem broker under ``var/``, DEBUG on, a secret key generated into ``var/``.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from config.env import env_bool, env_float, env_int, env_list, env_path, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("VAR_DIR", BASE_DIR / "var")

DEBUG = env_bool("DEBUG", default=True)


def _secret_key() -> str:
    key = env_str("SECRET_KEY", default="")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off.")
    # Development only: one key per checkout, kept so that sessions survive a restart.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.core",
    "apps.labs",
    "apps.imaging",
    "apps.gaze",
    "apps.datasets",
    "apps.training",
    "apps.evaluation",
    "apps.webhooks",
    "axes",  # login lockout (see "Accounts and security" below)
    "csp",  # Content-Security-Policy (ditto)
]

MIDDLEWARE = [
    "apps.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "apps.labs.security.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.labs.middleware.CurrentLabMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out sign-in into the 429 page
]
# Benchmarks (apps.core.loadbench): an X-Query-Count header on every response. Off: not installed.
QUERY_COUNT_HEADER = env_bool("QUERY_COUNT_HEADER", default=False)
if QUERY_COUNT_HEADER:
    MIDDLEWARE.insert(0, "apps.core.querycount.QueryCountMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.labs.context_processors.current_lab",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
_default_db = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
try:
    DATABASES = {
        "default": dj_database_url.parse(
            env_str("DATABASE_URL", default=_default_db),
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
            conn_health_checks=True,
        )
    }
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL cannot be read: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # A file, not memory, so that a Celery worker started by the tests sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A small lab's concurrent users on the embedded default: WAL lets readers go on while one
    # writer writes; IMMEDIATE takes the write lock when a transaction begins (not on its first
    # write, where SQLite cannot wait and answers "database is locked"); and a writer waits up
    # to SQLITE_BUSY_TIMEOUT seconds for the lock.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": env_float("SQLITE_BUSY_TIMEOUT", 30.0),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "labs.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Files ----------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env_path("STATIC_ROOT", VAR_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns at start-up when it is missing
STATICFILES_DIRS = [BASE_DIR / "frontend" / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "apps.core.staticfinders.PlotlyFinder",
]
MEDIA_URL = "media/"
MEDIA_ROOT = env_path("MEDIA_ROOT", VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Uploads: requests larger than the in-memory limit stream to temporary files on disk.
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 2 * 1024**3, minimum=1)
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("FILE_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024**2, minimum=0)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024**2, minimum=1)
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("DATA_UPLOAD_MAX_NUMBER_FILES", 1000, minimum=1)
FILE_UPLOAD_TEMP_DIR = str(env_path("FILE_UPLOAD_TEMP_DIR", VAR_DIR / "tmp"))
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
# Where workers keep local copies of files fetched from a remote storage, by content hash.
STORAGE_CACHE_DIR = str(env_path("STORAGE_CACHE_DIR", VAR_DIR / "cache" / "storage"))
# Where the files live: the filesystem under MEDIA_ROOT, or an S3-compatible store (AWS S3,
# MinIO, Ceph) that GPU workers on other machines share, keeping local copies by content hash.
STORAGE_BACKEND = env_str("STORAGE_BACKEND", default="filesystem").lower()
if STORAGE_BACKEND == "s3":
    _s3_bucket = env_str("S3_BUCKET", default="")
    _s3_endpoint = env_str("S3_ENDPOINT_URL", default="")  # empty: AWS itself
    _s3_key_id = env_str("S3_ACCESS_KEY_ID", default="")
    _s3_secret = env_str("S3_SECRET_ACCESS_KEY", default="")
    if not _s3_bucket:
        raise ImproperlyConfigured("STORAGE_BACKEND=s3 needs S3_BUCKET, the bucket of the files.")
    if _s3_endpoint and not _s3_endpoint.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"S3_ENDPOINT_URL={_s3_endpoint!r} is not an http(s) URL.")
    if bool(_s3_key_id) != bool(_s3_secret):
        raise ImproperlyConfigured("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together.")
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": _s3_bucket,
            "endpoint_url": _s3_endpoint or None,
            "region_name": env_str("S3_REGION", default="") or None,
            # Unset: boto3's own chain (AWS_* variables, ~/.aws, an instance or pod role).
            "access_key": _s3_key_id or None,
            "secret_key": _s3_secret or None,
            "location": env_str("S3_PREFIX", default="").strip("/"),
            # MinIO and Ceph want bucket-in-path URLs; AWS itself takes botocore's choice.
            "addressing_style": "path" if _s3_endpoint else None,
            # Names are content-addressed, so an object under a name holds that name's bytes:
            # saving over it is harmless, and save() must return the name it was given.
            "file_overwrite": True,
            # Files are served through the API, never by signed URLs to the bucket.
            "querystring_auth": False,
            "default_acl": None,  # objects stay private, as the bucket's policy says
            # An object opened for reading spools to FILE_UPLOAD_TEMP_DIR past this size (0 would
            # keep it all in memory).
            "max_memory_size": max(FILE_UPLOAD_MAX_MEMORY_SIZE, 1),
        },
    }
elif STORAGE_BACKEND != "filesystem":
    raise ImproperlyConfigured(f"STORAGE_BACKEND={STORAGE_BACKEND!r} is neither filesystem nor s3.")

# Images: a zip upload is refused whole when its entries would expand past these limits.
IMAGING_ZIP_MAX_BYTES = env_int("IMAGING_ZIP_MAX_BYTES", 8 * 1024**3, minimum=1)
IMAGING_ZIP_MAX_RATIO = env_int("IMAGING_ZIP_MAX_RATIO", 200, minimum=1)
IMAGING_ZIP_MAX_FILES = env_int("IMAGING_ZIP_MAX_FILES", 10000, minimum=1)
IMAGING_PREVIEW_MAX_SIDE = env_int("IMAGING_PREVIEW_MAX_SIDE", 1024, minimum=64)


# Gaze: quality grades (each measure grades on its own; the worst wins) and parse batching.
GAZE_QUALITY_THRESHOLDS = {
    "good_valid_pct": env_float("GAZE_QUALITY_GOOD_VALID_PCT", 90.0),
    "usable_valid_pct": env_float("GAZE_QUALITY_USABLE_VALID_PCT", 70.0),
    "good_on_image_pct": env_float("GAZE_QUALITY_GOOD_ON_IMAGE_PCT", 80.0),
    "usable_on_image_pct": env_float("GAZE_QUALITY_USABLE_ON_IMAGE_PCT", 50.0),
    "good_error_deg": env_float("GAZE_QUALITY_GOOD_ERROR_DEG", 0.5),
    "usable_error_deg": env_float("GAZE_QUALITY_USABLE_ERROR_DEG", 1.0),
    "min_fixations": env_int("GAZE_QUALITY_MIN_FIXATIONS", 1, minimum=0),
}
GAZE_FIXATION_BATCH_SIZE = env_int("GAZE_FIXATION_BATCH_SIZE", 5000, minimum=1)
# The sweeper (periodic tasks, apps.core.jobs) recovers background jobs (recordings' parses,
# upload batches, snapshot builds) with no sign of life: queued this long with no worker taking
# them (queued again), or running this long without a heartbeat (their worker died: queued
# again, and failed after SWEEP_MAX_ATTEMPTS starts).
SWEEP_QUEUED_AFTER_S = env_int("SWEEP_QUEUED_AFTER_S", 600, minimum=1)
SWEEP_RUNNING_AFTER_S = env_int("SWEEP_RUNNING_AFTER_S", 600, minimum=1)
SWEEP_EVERY_S = env_int("SWEEP_EVERY_S", 60, minimum=1)
SWEEP_MAX_ATTEMPTS = env_int("SWEEP_MAX_ATTEMPTS", 3, minimum=1)
# Cached saliency maps: at most the image's own size or one of the model's input sizes
# (height, width), made only for roles that write.
GAZE_SALIENCY_MODEL_SIZES = ((640, 512), (320, 256))
# The derived files a lab may keep (previews, pixel arrays, saliency maps; apps.core.quota).
LAB_DERIVED_QUOTA_BYTES = env_int("LAB_DERIVED_QUOTA_BYTES", 20 * 1024**3, minimum=0)

# Evaluate each new model version on its snapshot's test split as soon as its job succeeds.
EVALUATE_NEW_VERSIONS = env_bool("EVALUATE_NEW_VERSIONS", True)
# Seconds a training worker pauses after each batch: a test and demo knob only (0: none), which
# makes a tiny run slow enough to watch, cancel or kill.
TRAINING_BATCH_PAUSE_S = env_float("TRAINING_BATCH_PAUSE_S", 0.0)
# Webhooks (apps.webhooks): URLs resolving to loopback, private or link-local addresses are
# refused unless this is on (tests, or a lab whose receivers live inside its own network).
WEBHOOKS_ALLOW_PRIVATE_URLS = env_bool("WEBHOOKS_ALLOW_PRIVATE_URLS", default=False)
# Calls made for one event before its delivery is failed (backoff 10 s, 20 s, 40 s, ...).
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 6, minimum=1)

# --- Security (production-like when DEBUG is off) --------------------------------------------
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
if env_bool("SECURE_PROXY_SSL_HEADER", default=not DEBUG):
    # Behind the reverse proxy that terminates TLS (see docker/compose.yaml).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$"]
X_FRAME_OPTIONS = "DENY"

# --- REST API -------------------------------------------------------------------------------
API_TOKEN_DEFAULT_DAYS = env_int("API_TOKEN_DEFAULT_DAYS", 90, minimum=1)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.labs.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.Pagination",
    # Filters by id take plain ids (1 to 2**63 - 1, else 400) and never look them up, so that
    # another lab's id answers like an id that exists nowhere: an empty list.
    "DEFAULT_FILTER_BACKENDS": [
        "apps.labs.tenancy.TenantFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CXR gaze platform API",
    "DESCRIPTION": (
        "Labs, reading sessions, saliency targets, MT-UNet training and evaluation. Authenticate "
        "with a personal API token (`Authorization: Bearer <token>`) or a browser session."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every operation documents its 4xx/5xx answers in the one error shape (apps/core/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "apps.labs.roles.Role",
        "RecordingStatusEnum": "apps.gaze.models.Recording.Status",
        "UploadBatchStatusEnum": "apps.imaging.models.UploadBatch.Status",
        "UploadBatchFileStatusEnum": "apps.imaging.models.UploadBatchFile.Status",
        "DatasetSnapshotStatusEnum": "apps.datasets.models.DatasetSnapshot.Status",
        "TrainingJobStatusEnum": "apps.training.models.TrainingJob.Status",
        "EvaluationStatusEnum": "apps.evaluation.models.Evaluation.Status",
        "DataSplitEnum": "apps.datasets.models.SnapshotItem.Split",
        "WebhookDeliveryStatusEnum": "apps.webhooks.models.WebhookDelivery.Status",
    },
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", default="filesystem://")
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3600, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int(
    "CELERY_TASK_TIME_LIMIT", CELERY_TASK_SOFT_TIME_LIMIT + 300, minimum=1
)
if CELERY_TASK_TIME_LIMIT <= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_TIME_LIMIT must be above CELERY_TASK_SOFT_TIME_LIMIT.")
# Training runs for hours: its own limits, enforced by the training loop's wall-clock limit too.
CELERY_GPU_TASK_SOFT_TIME_LIMIT = env_int("CELERY_GPU_TASK_SOFT_TIME_LIMIT", 24 * 3600, minimum=1)
CELERY_GPU_TASK_TIME_LIMIT = CELERY_GPU_TASK_SOFT_TIME_LIMIT + 600
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = env_path("CELERY_BROKER_DIR", VAR_DIR / "broker")
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # One folder in and out, so that workers and clients share their messages (and pings).
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Fanout exchanges (pings, broadcast control) live here, not in the working directory.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Redis redelivers unacknowledged messages after the visibility timeout: keep it above the
    # longest hard limit, or a long training task would be handed to a second worker.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_GPU_TASK_TIME_LIMIT + 600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Job state lives in the database; nobody reads Celery results.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (Queue("default"), Queue("gpu"))
# Which queue each task goes to (CPU work on default; training will route to gpu).
CELERY_TASK_ROUTES = {
    "gaze.*": {"queue": "default"},
    "imaging.*": {"queue": "default"},
    "datasets.*": {"queue": "default"},
    # Training on gpu; its sweeper (task "training_sweep", outside "training.*") on default.
    "training.*": {"queue": "gpu"},
    # Evaluations run the model: gpu too; their sweeper ("evaluation_sweep") on default.
    "evaluation.*": {"queue": "gpu"},
    "webhooks.*": {"queue": "default"},
}
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 4, minimum=1)
CELERY_TASK_ALWAYS_EAGER = False
CELERY_WORKER_PING_TIMEOUT = 2.0
# Periodic tasks (``celery beat``: the demo's worker runs it with -B; compose has a beat service).
CELERY_BEAT_SCHEDULE = {
    "gaze-recordings-sweep": {"task": "gaze.recordings_sweep", "schedule": SWEEP_EVERY_S},
    "imaging-batches-sweep": {"task": "imaging.batches_sweep", "schedule": SWEEP_EVERY_S},
    "datasets-snapshots-sweep": {"task": "datasets.snapshots_sweep", "schedule": SWEEP_EVERY_S},
    "training-jobs-sweep": {"task": "training_sweep", "schedule": SWEEP_EVERY_S},
    "evaluations-sweep": {"task": "evaluation_sweep", "schedule": SWEEP_EVERY_S},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Accounts and security ------------------------------------------------------------------
# Invitations: lab admins invite by e-mail or username; the link works this many days.
LAB_INVITATION_DAYS = env_int("LAB_INVITATION_DAYS", 7, minimum=1)
# Mail (invitation links). The console backend prints mails to the log: set EMAIL_BACKEND to
# django.core.mail.backends.smtp.EmailBackend and the EMAIL_HOST settings in production.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", default="CXR gaze <noreply@localhost>")

# The cache holds the API token throttle's counters. Default: memory, per process; with several
# web processes (gunicorn workers, machines) set a shared cache, e.g. redis://host:6379/1.
_cache_url = env_str("CACHE_URL", default="")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
        if _cache_url
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# The API's read answers cached in Redis and made stale by every write (apps.core.respcache):
# on when RESPONSE_CACHE_URL (default: CACHE_URL) is a Redis URL, off when it is empty.
RESPONSE_CACHE_URL = env_str("RESPONSE_CACHE_URL", default=_cache_url)
if RESPONSE_CACHE_URL and not RESPONSE_CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("RESPONSE_CACHE_URL must be a redis://, rediss:// or unix:// URL.")
RESPONSE_CACHE_TTL = env_int("RESPONSE_CACHE_TTL", 300, minimum=1)
RESPONSE_CACHE_PREFIX = env_str("RESPONSE_CACHE_PREFIX", default="cxr-answers")
# Reverse proxies in front of the web server that append the client's address to
# X-Forwarded-For (1 behind the compose file's TLS proxy): the lockouts count per client address.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)

# Sign-in lockout (django-axes): after LOGIN_FAILURE_LIMIT failures for one username (from any
# address: a guesser spread over many machines), or from one address (over any usernames: a
# spray), sign-in for it is refused with a 429 page until LOGIN_COOLOFF_MINUTES have passed
# without a further failure. Unknown usernames count like known ones (no oracle).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out attempts
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env_bool("LOGIN_LOCKOUT_ENABLED", default=True)
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "apps.labs.security.client_ip"
AXES_LOCKOUT_CALLABLE = "apps.labs.security.login_locked_out"
AXES_RESET_ON_SUCCESS = False  # a success of one's own account must not clear an address's count
AXES_VERBOSE = False

# API tokens: after this many failed token attempts from one address within the window
# (seconds), token requests from that address are answered 429 until the window ends.
API_TOKEN_FAILURE_LIMIT = env_int("API_TOKEN_FAILURE_LIMIT", 20, minimum=1)
API_TOKEN_FAILURE_WINDOW = env_int("API_TOKEN_FAILURE_WINDOW", 300, minimum=1)

# Content-Security-Policy (django-csp) on every response: scripts, styles, images and
# connections from this site only. Styles also allow inline, because Plotly.js injects <style>
# elements and sets style attributes; no inline script runs anywhere. Workers from blob: are
# ReDoc's search.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Browser features no page uses are switched off.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
        "xr-spatial-tracking",
    )
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", default="INFO")},
}
