"""Every environment name purerl offers, with no import beyond the standard library:
`purerl list`, the CLI's checks and `Config` validation read these without loading JAX,
gymnax or Brax."""

# gymnax name → (module under gymnax.environments, class), as gymnax's registry builds it
GYMNAX_CLASSES = {
    "CartPole-v1": ("classic_control.cartpole", "CartPole"),
    "Acrobot-v1": ("classic_control.acrobot", "Acrobot"),
    "MountainCar-v0": ("classic_control.mountain_car", "MountainCar"),
    "MountainCarContinuous-v0": ("classic_control.continuous_mountain_car", "ContinuousMountainCar"),
    "Pendulum-v1": ("classic_control.pendulum", "Pendulum"),
    "Asterix-MinAtar": ("minatar.asterix", "MinAsterix"),
    "Breakout-MinAtar": ("minatar.breakout", "MinBreakout"),
    "Freeway-MinAtar": ("minatar.freeway", "MinFreeway"),
    "SpaceInvaders-MinAtar": ("minatar.space_invaders", "MinSpaceInvaders"),
    "BernoulliBandit-misc": ("misc.bernoulli_bandit", "BernoulliBandit"),
    "GaussianBandit-misc": ("misc.gaussian_bandit", "GaussianBandit"),
}
GYMNAX_ENVS = tuple(GYMNAX_CLASSES)
BRAX_ENVS = ("ant", "halfcheetah", "hopper", "walker2d", "humanoid", "reacher", "inverted_pendulum")
POINT_ENVS = ("open", "walls", "goal", "goal-walls")  # purerl.envs.pointmass
PROBES = ("constant", "observation", "delayed", "action", "action-continuous", "observation-action", "time-limit")


def available() -> list[str]:
    """Every name `purerl.envs.make` accepts."""
    return (list(GYMNAX_ENVS) + [f"brax/{n}" for n in BRAX_ENVS] + [f"probe/{p}" for p in PROBES]
            + [f"point/{p}" for p in POINT_ENVS])
