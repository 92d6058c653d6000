"""Departments: listing, creating and changing them."""

from __future__ import annotations

import collections.abc as c

import sqlalchemy as sa

from ...addresses import valid_email
from ...errors import NotFound
from ...errors import Refused
from ...i18n import N_
from ...models import DepartmentMixin
from ...models import OperatorMixin
from .. import audit
from .base import OperatorBase


class Departments(OperatorBase):
    """The shop's departments, and the operators' choice of them."""

    def departments(self, *, active_only: bool = False) -> list[DepartmentMixin]:
        model = self.models.department
        query = sa.select(model).order_by(model.name)
        if active_only:
            query = query.where(model.is_active)
        return list(self.session.execute(query).scalars())

    def department(self, department_id: int) -> DepartmentMixin:
        department = self.session.get(self.models.department, department_id)
        if department is None:
            raise NotFound("no-department", N_("No such department."))
        return department

    def save_department(
        self,
        department_id: int | None,
        *,
        name: str,
        email: str | None,
        is_active: bool = True,
        by: OperatorMixin,
    ) -> DepartmentMixin:
        """Create a department (``department_id=None``) or change one."""
        name, email = name.strip(), (email or "").strip().lower() or None
        if not name or len(name) > 120:
            raise Refused("bad-name", N_("Give a name of at most 120 characters."))
        if email is not None and not valid_email(email):
            raise Refused("bad-email", N_("This is not a valid e-mail address."))
        model = self.models.department
        same_name = self.session.execute(
            sa.select(model).where(model.name == name)
        ).scalar_one_or_none()
        if same_name is not None and same_name.id != department_id:
            raise Refused("name-taken", N_("A department with this name exists."))
        if department_id is None:
            department = model(name=name, email=email, is_active=is_active)
            self.session.add(department)
            action = "department-created"
        else:
            department = self.department(department_id)
            department.name, department.email = name, email
            department.is_active = is_active
            action = "department-changed"
        self.session.flush()
        target = f"department:{department.id} {name}"
        self.session.add(audit.entry(self.models, by, action, target))
        self.session.commit()
        return department

    def check_departments(self, department_ids: c.Collection[int]) -> None:
        """The admin form's rule: once the shop has departments, choose one.

        An operator in no department then serves none of them
        (:func:`~flask_livehelp.services.access.scope`).
        """
        if not department_ids and self.departments():
            raise Refused("department-required", N_("Choose at least one department."))

    def _departments(self, department_ids: c.Iterable[int]) -> list[DepartmentMixin]:
        wanted = {int(i) for i in department_ids}
        if not wanted:
            return []
        model = self.models.department
        found = list(
            self.session.execute(sa.select(model).where(model.id.in_(wanted))).scalars()
        )
        if len(found) != len(wanted):
            raise NotFound("no-department", N_("No such department."))
        return found
