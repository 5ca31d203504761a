"""URLs of the example shop: the admin, the Pi callbacks at ``pi_payment/``, and the shop."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # The base path pi-sdk-js posts to; the shop's own frontend uses it too.
    path("pi_payment/", include("django_pi_payments.urls")),
    path("", include("shop.urls")),
]
