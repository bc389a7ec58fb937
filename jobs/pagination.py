"""Page-number pagination of GET /api/jobs/: `{count, next, previous, results}`."""

from rest_framework.pagination import PageNumberPagination

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class JobPagination(PageNumberPagination):
    """`?page=` (from 1) and `?page_size=` (1 to MAX_PAGE_SIZE, validated by
    JobListQuerySerializer before this runs). A page past the last is 404."""

    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
