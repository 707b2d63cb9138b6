from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from screening.views import accounts
from slrweb.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/", accounts.account, name="account"),
    path("accounts/logout-everywhere/", accounts.logout_everywhere, name="logout_everywhere"),
    # logout, password change and password reset by e-mail, with templates/registration/.
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("screening.api.urls")),
    path("", include("screening.urls")),
]
