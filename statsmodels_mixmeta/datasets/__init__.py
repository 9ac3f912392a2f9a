"""Example data sets of R's mixmeta 1.2.1, as pandas DataFrames.

``load(name)`` reads any of them by name and ``names()`` lists what ships; each
set also has its own ``load_<name>()`` function documenting its columns. Every
call returns a fresh DataFrame (``NA`` in the files becomes NaN).

The files are the data of the R package mixmeta (Sera, Armstrong, Blangiardo
and Gasparrini, 2019), written to CSV with their R column order; where a set
had R row names, these are the first column (``berkey98``: ``trial``).

References
----------
Sera F, Armstrong B, Blangiardo M, Gasparrini A (2019). An extended
mixed-effects framework for meta-analysis. Statistics in Medicine
38(29):5429-5444.
"""

from .loader import data_path, load, names

__all__ = [
    "data_path",
    "load",
    "names",
    "load_alcohol",
    "load_bcg",
    "load_berkey98",
    "load_dbs",
    "load_fibrinogen",
    "load_gliomas",
    "load_hsls",
    "load_hyp",
    "load_nmmaps_tmeanagepar",
    "load_nmmaps_tmeanpar",
    "load_p53",
    "load_school",
    "load_smoking",
    "load_thrombolytic",
]


def load_alcohol():
    """Alcohol intake and colorectal cancer: 8 cohort studies, 48 dose categories.

    Dose-response data from the Pooling Project of Prospective Studies of Diet
    and Cancer, in long format (one row per study and dose category).

    Returns
    -------
    pandas.DataFrame
        48 rows: ``id`` (study label), ``type`` (``"ir"``: incidence rate),
        ``dose`` (g/day), ``cases``, ``peryears`` (person-years), ``logrr``
        (log relative rate versus the study's reference category) and ``se``
        (its standard error; NaN in the 8 reference rows, where ``logrr`` is 0).

    Notes
    -----
    The reference rows are needed to reconstruct the within-study covariances
    (Greenland-Longnecker); the models are fitted to the 40 other rows.
    Source: Orsini et al. (2012), Am J Epidemiol 175(1):66-73; Crippa and
    Orsini (2016), J Stat Softw 72(1).
    """
    return load("alcohol")


def load_bcg():
    """BCG vaccine against tuberculosis: 13 randomised trials.

    Returns
    -------
    pandas.DataFrame
        13 rows: ``trial``, ``author``, ``year``; counts ``tpos``/``tneg``
        (tuberculosis cases / non-cases, vaccinated) and ``cpos``/``cneg``
        (control); ``ablat`` (absolute latitude of the trial, degrees);
        ``alloc`` (allocation: random, alternate, systematic); the log relative
        risk ``logrr`` with variance ``logrrvar`` and the log odds ratio
        ``logor`` with variance ``logorvar``.

    Notes
    -----
    Source: Colditz et al. (1994), JAMA 271:698-702.
    """
    return load("bcg")


def load_berkey98():
    """Periodontal disease: 5 trials of surgical versus non-surgical treatment.

    Returns
    -------
    pandas.DataFrame
        5 rows: ``trial`` (first author, R's row names), ``pubyear``, ``npat``
        (patients); two outcomes, improvements (mm) in probing depth ``PD`` and
        attachment level ``AL``; within-study (co)variances ``var_PD``,
        ``cov_PD_AL``, ``var_AL``.

    Notes
    -----
    R's ``berkey98[5:7]`` is ``var_PD, cov_PD_AL, var_AL`` (here columns 6-8,
    because of the extra ``trial`` column). Source: Berkey et al. (1998),
    Statistics in Medicine 17:2537-2550.
    """
    return load("berkey98")


def load_dbs():
    """Deep-brain stimulation in Parkinson's disease: 46 studies, wide format.

    Returns
    -------
    pandas.DataFrame
        46 rows: ``author``, ``year``; change in the UPDRS-III motor score and
        its variance at 3, 6, 12 months and long term (``eff_month3``,
        ``var_month3``, ..., ``eff_long``, ``var_long``; NaN where a study did
        not report that time); ``duration`` (mean disease duration, years) and
        ``baseline`` (mean baseline score).

    Notes
    -----
    A longitudinal meta-analysis example; see :func:`load_gliomas` for data in
    long format. Source: Ishak et al. (2007), Clinical Trials 4(5):525-539.
    """
    return load("dbs")


def load_fibrinogen():
    """Fibrinogen Studies Collaboration: 31 cohorts, 4 correlated log hazard ratios.

    Returns
    -------
    pandas.DataFrame
        31 rows: ``cohort``; ``b2``..``b5`` (log hazard ratios of coronary heart
        disease for fibrinogen categories 2-5 versus category 1);
        ``V_2_2``, ``V_2_3``, ``V_2_4``, ``V_2_5``, ``V_3_3``, ``V_3_4``,
        ``V_3_5``, ``V_4_4``, ``V_4_5``, ``V_5_5`` (their within-study
        covariance matrix, lower triangle by column).

    Notes
    -----
    Source: Fibrinogen Studies Collaboration (2005), JAMA 294:1799-1809; White
    (2009), Stata Journal 9(1):40-56.
    """
    return load("fibrinogen")


def load_gliomas():
    """Malignant gliomas: 17 trials, survival odds ratios at 4 times, long format.

    Returns
    -------
    pandas.DataFrame
        68 rows (17 trials x 6, 12, 18, 24 months): ``study``, ``time``
        (months); ``ntreat``/``streat`` and ``ncontr``/``scontr`` (patients and
        survivors, radiotherapy plus chemotherapy versus radiotherapy alone);
        ``logOR`` and ``logORvar`` (log odds ratio of survival and its
        variance; NaN for study 17 at 6 and 18 months).

    Notes
    -----
    Source: Musekiwa et al. (2016), PLoS One 11(10):e0164898; Trikalinos and
    Olkin (2012), Clinical Trials 9(5):610-620.
    """
    return load("gliomas")


def load_hsls():
    """High School Longitudinal Study: regression coefficients in 8 race groups.

    Returns
    -------
    pandas.DataFrame
        8 rows: ``race``; ``b1``, ``b2``, ``b3`` (coefficients of sex,
        socio-economic status and their interaction on the standardised
        mathematics score); ``V11``, ``V12``, ``V13``, ``V22``, ``V23``,
        ``V33`` (their covariance matrix, lower triangle by column).

    Notes
    -----
    Source: Chen, Manning and Dupuis (2012), Biometrics 68(4):1278-1284.
    """
    return load("hsls")


def load_hyp():
    """Hypertension treatment: 10 trials, systolic and diastolic blood pressure.

    Returns
    -------
    pandas.DataFrame
        10 rows: ``study``; treatment effects on systolic (``sbp``, ``sbp_se``)
        and diastolic (``dbp``, ``dbp_se``) blood pressure with standard
        errors; ``rho`` (their within-study correlation); ``ish`` (1 for
        trials in isolated systolic hypertension).

    Notes
    -----
    Source: Jackson, White and Riley (2013), Biometrical Journal 55(2):231-245.
    """
    return load("hyp")


def load_nmmaps_tmeanagepar():
    """NMMAPS temperature-mortality curves: 108 US cities x 3 age groups.

    Returns
    -------
    pandas.DataFrame
        324 rows: ``city``, ``cityname``, ``state``, ``statename``, ``agecat``
        (``under65``, ``65to74``, ``75p``); ``coef1``..``coef4`` (spline
        coefficients of the first-stage temperature-mortality association) and
        ``vcov1``..``vcov10`` (their 4 x 4 covariance matrix, lower triangle by
        column).

    Notes
    -----
    Larger than the mixmeta examples; used by the benchmarks. From the
    National Morbidity, Mortality, and Air Pollution Study (NMMAPS) as
    analysed in Sera et al. (2019).
    """
    return load("nmmaps_tmeanagepar")


def load_nmmaps_tmeanpar():
    """NMMAPS temperature-mortality curves of 108 US cities, with location.

    Returns
    -------
    pandas.DataFrame
        108 rows: ``city``, ``cityname``, ``state``, ``statename``; ``lat``,
        ``long`` (degrees north and west) and ``alt`` (altitude, feet);
        ``coef1``..``coef4`` (spline coefficients of the first-stage
        temperature-mortality association, all ages) and ``vcov1``..``vcov10``
        (their 4 x 4 covariance matrix, lower triangle by column).

    Notes
    -----
    The first-stage estimates of the NMMAPS data (``tmeanpar``) joined by
    city with their coordinates (``latlong``), as analysed in Gasparrini,
    Armstrong and Kenward (2012), Stat Med 31:3821-3839, and Sera et al.
    (2019).
    """
    return load("nmmaps_tmeanpar")


def load_p53():
    """Mutant p53 and squamous cell carcinoma: 6 observational studies.

    Returns
    -------
    pandas.DataFrame
        6 rows: ``study``; ``y1``, ``V1`` (log hazard ratio for disease-free
        survival and its variance, reported by 3 studies) and ``y2``, ``V2``
        (same for overall survival). Within-study correlations are unknown.

    Notes
    -----
    Source: Jackson, Riley and White (2011), Statistics in Medicine
    30(20):2481-2498.
    """
    return load("p53")


def load_school():
    """Modified school calendar and achievement: 56 studies in 11 districts.

    Returns
    -------
    pandas.DataFrame
        56 rows: ``district``, ``study``; ``effect`` (standardised difference
        in reading achievement, year-round versus traditional calendar),
        ``var`` (its variance) and ``year`` (of the study).

    Notes
    -----
    A two-level (studies within districts) example. Source: Konstantopoulos
    (2011), Research Synthesis Methods 2(1):61-76.
    """
    return load("school")


def load_smoking():
    """Smoking cessation: 24 trials of 4 interventions (network meta-analysis).

    Returns
    -------
    pandas.DataFrame
        24 rows: ``study``, ``design`` (arms compared, e.g. ``"acd"``); events
        ``dA``..``dD`` and participants ``nA``..``nD`` per arm (A no contact,
        B self-help, C individual, D group counselling); log odds ratios
        ``yB``, ``yC``, ``yD`` versus A; their covariance ``SBB``, ``SBC``,
        ``SBD``, ``SCC``, ``SCD``, ``SDD`` (lower triangle by column).

    Notes
    -----
    Trials without arm A carry an augmented arm with 0.001 events out of 0.01.
    Source: Lu and Ades (2006), JASA 101:447-459; White (2011), Stata Journal
    11:255-270.
    """
    return load("smoking")


def load_thrombolytic():
    """Thrombolytic therapy after myocardial infarction: 20 trials, 38 subgroups.

    Returns
    -------
    pandas.DataFrame
        38 rows: ``trial``, ``time2treat`` (treatment delay, hours); deaths and
        patients ``dtreat``/``ntreat`` and ``dcontr``/``ncontr``; risks
        ``risktreat``, ``riskcontr``; ``absrisk`` (absolute risk difference)
        and ``var`` (its variance).

    Notes
    -----
    A two-level (subgroups within trials) example. Source: Thompson, Turner
    and Warn (2001), Statistical Methods in Medical Research 10(6):375-392.
    """
    return load("thrombolytic")
