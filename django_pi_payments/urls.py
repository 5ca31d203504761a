"""Routes for the Pi frontend callbacks, mounted at ``pi_payment/`` by convention.

Every route answers with or without a trailing slash, as pi-sdk-js and the Pi demo post both ways.
"""

from django.urls import re_path

from . import views

app_name = "pi_payments"

urlpatterns = [
    re_path(r"^auth/?$", views.AuthView.as_view(), name="auth"),
    re_path(r"^me/?$", views.MeView.as_view(), name="me"),
    re_path(r"^approve/?$", views.ApproveView.as_view(), name="approve"),
    re_path(r"^complete/?$", views.CompleteView.as_view(), name="complete"),
    re_path(r"^cancel/?$", views.CancelView.as_view(), name="cancel"),
    re_path(r"^error/?$", views.ErrorView.as_view(), name="error"),
    re_path(r"^incomplete/?$", views.IncompleteView.as_view(), name="incomplete"),
    re_path(r"^payments/?$", views.PaymentListView.as_view(), name="payments"),
    re_path(
        r"^payments/(?P<identifier>[^/]+)/?$",
        views.PaymentDetailView.as_view(),
        name="payment-detail",
    ),
]
