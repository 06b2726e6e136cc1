"""Dashboard routes of the composite pages (see `alerts.views`)."""

from django.urls import path

from .views import intel, member_settings, response, staff

app_name = "dashboard"

urlpatterns = [
    path("", intel.home, name="home"),
    path("triage/", intel.triage_queue, name="triage"),
    path("triage/bulk/", intel.triage_bulk, name="triage_bulk"),
    path("objects/<str:stix_id>/", intel.object_detail, name="object"),
    # the collective response
    path("response/", response.board, name="board"),
    path("response/live/", response.board_live, name="board_live"),
    path("response/<str:uid>/", response.activation_detail, name="activation"),
    path("response/<str:uid>/live/", response.activation_live, name="activation_live"),
    path("response/<str:uid>/aid/", response.request_aid, name="request_aid"),
    path("aid/<str:request_uid>/offer/", response.offer_aid, name="offer_aid"),
    path("aid/<str:request_uid>/close/", response.close_aid, name="close_aid"),
    path("tasks/", response.my_tasks, name="tasks"),
    path("tasks/<str:uid>/update/", response.update_task, name="update_task"),
    path("report/", response.report_attack, name="report"),
    # a member admin's alerting settings
    path("settings/webhooks/", member_settings.webhooks, name="webhooks"),
    path(
        "settings/webhooks/<int:endpoint_id>/test/",
        member_settings.webhook_test,
        name="webhook_test",
    ),
    path(
        "settings/webhooks/<int:endpoint_id>/rotate/",
        member_settings.webhook_rotate,
        name="webhook_rotate",
    ),
    path(
        "settings/webhooks/<int:endpoint_id>/enable/",
        member_settings.webhook_enable,
        name="webhook_enable",
    ),
    path(
        "settings/webhooks/<int:endpoint_id>/disable/",
        member_settings.webhook_disable,
        name="webhook_disable",
    ),
    path(
        "settings/webhooks/<int:endpoint_id>/delete/",
        member_settings.webhook_delete,
        name="webhook_delete",
    ),
    path(
        "settings/webhooks/<int:endpoint_id>/replay/",
        member_settings.webhook_replay,
        name="webhook_replay",
    ),
    path(
        "settings/deliveries/<int:delivery_id>/replay/",
        member_settings.delivery_replay,
        name="delivery_replay",
    ),
    path("settings/policy/", member_settings.policy, name="policy"),
    path("settings/assets/", member_settings.assets, name="assets"),
    path(
        "settings/assets/<int:asset_id>/remove/", member_settings.remove_asset, name="remove_asset"
    ),
    # exchange staff
    path("staff/", staff.staff_home, name="staff"),
    path("staff/drills/", staff.start_drill, name="staff_drill"),
    path("staff/activations/<str:uid>/", staff.staff_activation, name="staff_activation"),
    path("staff/activations/<str:uid>/<str:action>/", staff.activation_action, name="staff_action"),
]
