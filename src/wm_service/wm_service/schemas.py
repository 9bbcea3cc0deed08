"""Request and response bodies of the /v1 API (pydantic), with the limits every request must
respect. Numbers must be finite (JSON's NaN/Infinity extensions are refused), unknown fields
are refused, and every list has a maximum length, so one request cannot ask for unbounded work.
The OpenAPI spec (openapi.json, checked in) is generated from these.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

from pydantic import (BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt,
                      model_validator)
from typing_extensions import Annotated

from .config import HORIZON_LIMIT

MAX_COORD = 1.0e5        # metres; as wm_fleet.schema: beyond this it is not a warehouse
MAX_SPEED = 20.0         # m/s or rad/s in a state or command
MAX_NEIGHBOURS = 32
MAX_OBSTACLES = 64
MAX_NEIGHBOUR_POINTS = 100
ID_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
MODEL_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"


Speed = Annotated[StrictFloat, Field(ge=-MAX_SPEED, le=MAX_SPEED)]
Coordinate = Annotated[StrictFloat, Field(ge=-MAX_COORD, le=MAX_COORD)]


class _Body(BaseModel):
    # Request numbers are StrictFloat / StrictInt: true is not 1.0, "1" is not 1 (integers
    # are still numbers).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class State(_Body):
    """Pose in the fleet's map frame and body velocities."""

    x: StrictFloat = Field(ge=-MAX_COORD, le=MAX_COORD)
    y: StrictFloat = Field(ge=-MAX_COORD, le=MAX_COORD)
    yaw: StrictFloat = Field(ge=-100.0, le=100.0, description="heading [rad]")
    v: StrictFloat = Field(0.0, ge=-MAX_SPEED, le=MAX_SPEED, description="forward speed [m/s]")
    w: StrictFloat = Field(0.0, ge=-MAX_SPEED, le=MAX_SPEED, description="turn rate [rad/s]")


class _FromStateOrRobot(_Body):
    # Exactly one of state and robot_id, said in the schema too (oneOf), so generated
    # clients and schemathesis know it. Neither is nullable: absent means absent.
    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["state"]},
                                                           {"required": ["robot_id"]}]})

    model: Optional[str] = Field(None, pattern=MODEL_PATTERN,
                                 description="model name from GET /v1/models; default: the "
                                 "service's default model")
    state: State = Field(None, description="the robot's state; or give robot_id")
    robot_id: str = Field(None, pattern=ID_PATTERN,
                          description="read the state of this robot from the fleet's Redis "
                          "instead of `state`")
    payload_kg: Optional[StrictFloat] = Field(None, ge=0.0, le=5000.0,
                                        description="carried mass; null = unknown")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.state is None) == (self.robot_id is None):
            raise ValueError("give exactly one of state and robot_id")
        return self


class PredictRequest(_FromStateOrRobot):
    """What does the robot do under these velocity commands, one per dt?"""

    commands: List[Tuple[Speed, Speed]] = Field(
        min_length=1, max_length=HORIZON_LIMIT,
        description="[[v, w], ...] commanded velocities, one per model step (dt); the "
        "service's max_horizon may allow fewer")


class PredictResponse(BaseModel):
    model: str
    version: str
    dt: float
    trusted: bool = Field(description="false: the model's prediction failed its plausibility "
                          "check and this is kinematics")
    states: List[List[float]] = Field(description="[[x, y, yaw, v, w], ...], the start first")


class Goal(_Body):
    x: StrictFloat = Field(ge=-MAX_COORD, le=MAX_COORD)
    y: StrictFloat = Field(ge=-MAX_COORD, le=MAX_COORD)
    yaw: StrictFloat = Field(0.0, ge=-100.0, le=100.0)
    xy_tolerance: StrictFloat = Field(0.25, ge=0.0, le=100.0)
    yaw_tolerance: StrictFloat = Field(0.5, ge=0.0, le=10.0)


class Neighbour(_Body):
    """Another robot's intended path: times relative to the state's time [s], increasing."""

    id: str = Field(pattern=ID_PATTERN)
    radius: StrictFloat = Field(gt=0.0, le=10.0)
    times: List[Annotated[StrictFloat, Field(ge=-3600.0, le=3600.0)]] = Field(
        min_length=1, max_length=MAX_NEIGHBOUR_POINTS)
    xy: List[Tuple[Coordinate, Coordinate]] = Field(min_length=1,
                                                    max_length=MAX_NEIGHBOUR_POINTS)

    @model_validator(mode="after")
    def _path(self):
        if len(self.times) != len(self.xy):
            raise ValueError("neighbour %s: %d times for %d points"
                             % (self.id, len(self.times), len(self.xy)))
        if any(b <= a for a, b in zip(self.times, self.times[1:])):
            raise ValueError("neighbour %s: times must increase" % self.id)
        return self


class Obstacle(_Body):
    x: StrictFloat = Field(ge=-MAX_COORD, le=MAX_COORD)
    y: StrictFloat = Field(ge=-MAX_COORD, le=MAX_COORD)
    radius: StrictFloat = Field(gt=0.0, le=20.0)


class PlanRequest(_FromStateOrRobot):
    """The planner's best command sequence from a state to a goal."""

    goal: Goal
    neighbours: List[Neighbour] = Field(default_factory=list, max_length=MAX_NEIGHBOURS)
    fleet_neighbours: StrictBool = Field(False, description="with robot_id: also plan around the "
                                   "other robots' shared paths from Redis")
    obstacles: List[Obstacle] = Field(default_factory=list, max_length=MAX_OBSTACLES)
    seed: StrictInt = Field(0, ge=0, le=2**31 - 1, description="sampling seed: the same request "
                      "and seed give the same plan")


class PlanResponse(BaseModel):
    model: str
    version: str
    dt: float
    status: str = Field(description="ok, collision (every sample collides: stop) or failed")
    cost: Optional[float]
    iterations: int
    solve_time_ms: float
    controls: List[List[float]] = Field(description="[[v, w], ...]; the first is the "
                                        "command to send now")
    trajectory: List[List[float]] = Field(description="[[x, y, yaw], ...] predicted path")


class ModelInfo(BaseModel):
    name: str
    kind: str
    version: str
    dt: float
    device: str = Field(description="where /v1/predict runs it (cpu, cuda)")
    checksums: dict = Field(description="sha256 of every artifact file")


class ModelsResponse(BaseModel):
    default: str
    models: List[ModelInfo]


class Health(BaseModel):
    status: str
    models: List[str]
    batcher: str
    fleet: str


class Problem(BaseModel):
    detail: str
