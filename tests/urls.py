"""URLconf for the test suite: the admin and the app at the pi-sdk-js default base path."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("pi_payment/", include("django_pi_payments.urls")),
]
