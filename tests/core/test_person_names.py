"""Names in messages: 张先生 / 张女士 / 张伟 and Mr Zhang / Ms Zhang / Wei Zhang by the documented
rule; compound surnames; Latin names; the template context renders them per language."""

import pytest

from clm.channels.templates import MessageTemplate, render
from clm.core.person_names import display_name, salutation, split_chinese_name, split_full_name

CASES = [
    # first, last, gender, zh salutation, en salutation, zh display, en display
    ("伟", "张", "male", "张先生", "Mr Zhang", "张伟", "Wei Zhang"),
    ("芳", "王", "female", "王女士", "Ms Wang", "王芳", "Fang Wang"),
    ("伟", "张", None, "张伟", "Wei Zhang", "张伟", "Wei Zhang"),
    ("娜娜", "欧阳", "女", "欧阳女士", "Ms Ouyang", "欧阳娜娜", "Nana Ouyang"),
    ("欧阳娜娜", None, "f", "欧阳女士", "Ms Ouyang", "欧阳娜娜", "Nana Ouyang"),  # one field, split
    ("司马光", None, None, "司马光", "Guang Sima", "司马光", "Guang Sima"),
    ("小贤", "曾", "男", "曾先生", "Mr Zeng", "曾小贤", "Xiaoxian Zeng"),  # a surname's own reading
    ("Ann", "Lee", "female", "Lee女士", "Ms Lee", "Ann Lee", "Ann Lee"),
    ("Ann", "Lee", None, "Ann Lee", "Ann Lee", "Ann Lee", "Ann Lee"),
    (None, None, "male", "", "", "", ""),
]


@pytest.mark.parametrize(("first", "last", "gender", "zh", "en", "zh_name", "en_name"), CASES)
def test_salutation_and_display_name_by_the_rule(first, last, gender, zh, en, zh_name, en_name):
    assert salutation(first, last, gender, "zh") == zh
    assert salutation(first, last, gender, "en") == en
    assert display_name(first, last, "zh") == zh_name
    assert display_name(first, last, "en") == en_name


def test_compound_surnames_take_two_characters_others_one():
    assert split_chinese_name("诸葛亮") == ("诸葛", "亮")
    assert split_chinese_name("上官婉儿") == ("上官", "婉儿")
    assert split_chinese_name("王小明") == ("王", "小明")
    assert split_chinese_name("欧阳") == ("欧", "阳")  # two characters: a surname and a given name


def test_a_template_greets_in_its_own_language():
    template = MessageTemplate.model_validate(
        {
            "name": "hello",
            "channel": "email",
            "subject": {"zh": "{{ customer.salutation }}，您好", "en": "Hello {{ customer.salutation }}"},
            "text": {
                "zh": "{{ customer.display_name }}，中秋快乐！",
                "en": "Happy Mid-Autumn, {{ customer.display_name }}!",
            },
        }
    )
    customer = {"first_name": "伟", "last_name": "张", "gender": "male"}
    zh = render(template, {"customer": customer}, "zh")
    en = render(template, {"customer": customer}, "en")
    assert (zh.subject, zh.text) == ("张先生，您好", "张伟，中秋快乐！")
    assert (en.subject, en.text) == ("Hello Mr Zhang", "Happy Mid-Autumn, Wei Zhang!")


def test_a_whole_name_in_one_column_is_split_into_family_and_given_name():
    assert split_full_name("欧阳娜娜") == ("欧阳", "娜娜")
    assert split_full_name(" 张伟 ") == ("张", "伟")
    assert split_full_name("Ann Lee") == ("Lee", "Ann")
    assert split_full_name("Mary Ann Lee") == ("Lee", "Mary Ann")
    assert split_full_name("Madonna") == ("", "Madonna")


def test_a_customers_file_with_a_name_column_greets_each_person_properly(engine, tmp_path):
    """A Chinese export's 姓名 column, mapped to full_name, fills family and given name, so a
    message says 欧阳女士 (an unmapped 姓名 used to become an attribute and the greeting empty)."""
    from clm.customers.importer import customer_from_row
    from clm.worker.import_preview import suggest_mapping

    assert suggest_mapping("customers", ["姓名", "性别", "手机号"])["姓名"] == "full_name"
    row = customer_from_row({"full_name": "欧阳娜娜", "gender": "女", "phone": "13800138000"})
    assert (row.last_name, row.first_name, row.attributes) == ("欧阳", "娜娜", {})
    assert salutation(row.first_name, row.last_name, row.gender, "zh") == "欧阳女士"
    kept = customer_from_row({"name": "张伟", "first_name": "伟", "last_name": "张", "external_id": "C2"})
    assert (kept.last_name, kept.first_name) == ("张", "伟")  # own columns win
