from django.contrib import admin

from agents_app.models import Agent, Task, ToolInvocation


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["name", "strategy", "model", "voice", "turn_budget", "created_at"]
    list_filter = ["strategy"]
    search_fields = ["name", "instructions"]


class RecordInline(admin.TabularInline):
    """An inline of records, not of things to edit: what happened stays as it happened."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ToolInvocationInline(RecordInline):
    model = ToolInvocation
    fields = ["tool", "status", "arguments", "result", "duration_ms", "error", "created_at"]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "session", "kind", "status", "created_at", "duration_ms"]
    list_filter = ["status", "kind"]
    search_fields = ["id", "session__id", "error"]
    readonly_fields = [field.name for field in Task._meta.fields]
    inlines = [ToolInvocationInline]


@admin.register(ToolInvocation)
class ToolInvocationAdmin(admin.ModelAdmin):
    list_display = ["tool", "status", "task", "duration_ms", "created_at"]
    list_filter = ["status", "tool"]
    search_fields = ["tool", "task__id", "error"]
    readonly_fields = [field.name for field in ToolInvocation._meta.fields]
